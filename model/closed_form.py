"""Shared parts of the closed-form baselines (``ridge``, ``eszsl``): inputs, grids and one factorised ridge system.

Both methods map the standardized, concatenated features ``x = [a, v]`` (``D = D_A + D_V``) linearly into the
class-embedding space and solve for the map in closed form, once per setting of a regulariser grid. The protocol
fits them through :meth:`~avzsl.model.registry.Method.fit` instead of gradient steps: stage 1 fits setting ``i`` as
its "epoch" ``i + 1`` and validates it like any epoch (so e* picks the setting with the best validation H), stage 2
fits only setting ``e* - 1`` on its own training part.

The linear algebra is done once per training part, in float64 (:class:`RidgeFactors`): the Gram matrix of the inputs
is eigendecomposed, after which the ridge solution for any regulariser is a diagonal rescaling and one product, so a
grid of settings costs hardly more than one solve.

Regularisers are given RELATIVE to a data scale (``trace(X^T X) / D`` for the input side, the mean eigenvalue of the
Gram matrix, about N for standardized inputs): the same relative value then means the same amount of shrinkage in
stage 1 and in stage 2, whose training parts differ in size.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from avzsl.model.baseline_common import InputStandardizer
from avzsl.model.registry import FeatureBatch, FeatureDims, LossTerms, Method

DECADE_GRID: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)
"""The default relative regulariser grid, ``10^-3 .. 10^3``."""


def checked_grid(values: Any, name: str) -> tuple[float, ...]:
    """A regulariser grid as a tuple of floats (options read back from JSON hold lists).

    Raises:
        ValueError: empty, or a value that is not > 0.
    """
    grid = tuple(float(v) for v in values)
    if not grid or any(not v > 0 for v in grid):
        raise ValueError(f"{name} must be a non-empty list of values > 0, got {list(values)!r}")
    return grid


class RidgeFactors:
    """The ridge system ``min_W ||X W - T||^2 + reg ||W||^2`` of one training part, factorised for any ``reg``.

    The targets depend on the label only (row i of T is ``class_targets[labels[i]]``). With ``r = min(N, D)``: for
    ``N >= D`` (primal) ``X^T X = Q diag(e) Q^T`` and ``W = Q diag(1/(e + reg)) Q^T X^T T``; for ``N < D`` (dual)
    ``X X^T = U diag(e) U^T`` and ``W = X^T U diag(1/(e + reg)) U^T T``. Either way ``W = left @ coefficients(reg)``
    with ``left`` ``(D, r)`` and ``coefficients(reg) = proj / (e + reg)``, ``proj`` ``(r, A)``.

    Everything is float64. In the primal case X is converted in row chunks and ``X^T T`` is built from per-class
    sums of X, so neither a float64 copy of X nor the ``(N, A)`` targets are ever held (VGGSound stage 2: 81k x 1024).

    Args:
        x: ``(N, D)`` inputs (any float dtype).
        labels: ``(N,)`` long row index into ``class_targets``.
        class_targets: ``(C, A)`` float64 target of each class.
    """

    CHUNK = 8192
    """Rows of X converted to float64 at a time."""

    def __init__(self, x: torch.Tensor, labels: torch.Tensor, class_targets: torch.Tensor) -> None:
        n, d = x.shape
        self.n = int(n)
        self.dual = n < d
        class_targets = class_targets.double()
        counts = torch.bincount(labels, minlength=class_targets.shape[0]).double()
        self.target_sq = float((counts * class_targets.pow(2).sum(1)).sum())  # ||T||^2
        if self.dual:
            x64 = x.double()
            eig, u = torch.linalg.eigh(x64 @ x64.T)  # (N,), (N, N)
            self.left = x64.T @ u  # (D, N)
            self.proj = u.T @ class_targets[labels]  # (N, A)
        else:
            gram = x.new_zeros((d, d), dtype=torch.float64)
            class_sums = x.new_zeros((class_targets.shape[0], d), dtype=torch.float64)  # (C, D)
            for start in range(0, n, self.CHUNK):
                rows = x[start:start + self.CHUNK].double()
                gram += rows.T @ rows
                class_sums.index_add_(0, labels[start:start + self.CHUNK], rows)
            eig, q = torch.linalg.eigh(gram)  # (D,), (D, D)
            self.left = q
            self.proj = q.T @ (class_sums.T @ class_targets)  # Q^T X^T T, (D, A)
        # A PSD Gram matrix can come out with tiny negative eigenvalues in floating point.
        self.eig = eig.clamp_min(0.0)
        self.scale = float(self.eig.sum()) / d  # trace(X^T X) / D: the unit of the relative regularisers

    def coefficients(self, reg: float) -> torch.Tensor:
        """``(r, A)`` coordinates of the ridge solution for the absolute regulariser ``reg`` (> 0)."""
        return self.proj / (self.eig + reg)[:, None]

    def weights(self, coef: torch.Tensor) -> torch.Tensor:
        """The ``(D, A')`` map of coefficients ``(r, A')`` (``A'`` may differ from A after a right product)."""
        return self.left @ coef

    def squared_error(self, coef: torch.Tensor, target_sq: float, right: torch.Tensor | None = None) -> float:
        """``||X W R - Y||^2`` without forming ``X W``, for ``W = left @ coef`` and targets with ``Y R^T = T``.

        Args:
            coef: ``(r, A')`` coefficients.
            target_sq: ``||Y||^2``.
            right: ``(A', A')`` Gram matrix ``R R^T`` of a right factor (ESZSL: ``R = S^T``, ``R R^T = S^T S``);
                None for ``R = I`` (then ``Y = T``).
        """
        # Weights of ||X W||^2 per coordinate: e (primal: the columns of X Q have squared norms e) or e^2 (dual:
        # X X^T U = U diag(e)); of the cross term: 1 (primal) or e (dual).
        quad_w = self.eig ** 2 if self.dual else self.eig
        cross_w = self.eig if self.dual else torch.ones_like(self.eig)
        weighted = coef * quad_w[:, None]
        fitted_sq = (weighted * coef).sum() if right is None else (weighted * (coef @ right)).sum()
        cross = (coef * self.proj * cross_w[:, None]).sum()
        return max(0.0, float(fitted_sq - 2.0 * cross) + target_sq)


class ClosedFormMethod(Method):
    """Base of the closed-form methods: standardized ``[a, v]`` inputs and a ``(D, D_W)`` map in a buffer.

    Subclasses implement :meth:`prepare_fit` (factorise the training part), :meth:`fit_settings`, :meth:`fit` and
    :meth:`scores`. Everything a fitted model needs for scoring is a buffer (``weight``, the standardization
    statistics, the chosen ``setting`` and its absolute ``regulariser`` values), so it travels in ``state_dict``;
    the factorisation is training-time state only.
    """

    num_regularisers = 1
    """Length of the ``regulariser`` buffer (absolute values of the fitted setting)."""

    def __init__(self, dims: FeatureDims, options: Any) -> None:
        super().__init__(dims, options)
        self.norm_a = InputStandardizer(dims.audio_dim)
        self.norm_v = InputStandardizer(dims.visual_dim)
        self.register_buffer("weight", torch.zeros(dims.audio_dim + dims.visual_dim, dims.text_dim))
        self.register_buffer("setting", torch.tensor(-1))  # grid index of the fitted setting; -1 before any fit
        self.register_buffer("regulariser", torch.zeros(self.num_regularisers, dtype=torch.float64))
        self.factors: RidgeFactors | None = None
        self._pending: tuple[FeatureBatch, torch.Tensor, torch.Tensor] | None = None

    def inputs(self, batch: FeatureBatch) -> torch.Tensor:
        """``(B, D_A + D_V)``: standardized audio then visual features (identity scaling before ``prepare``)."""
        return torch.cat((self.norm_a(batch.audio.float()), self.norm_v(batch.visual.float())), dim=1)

    @torch.no_grad()
    def prepare(self, train: FeatureBatch, labels: torch.Tensor, class_emb: torch.Tensor) -> None:
        """Fit the standardization on the training part and keep the part for the first :meth:`fit`.

        The factorisation itself waits for the first fit, so that its time is counted in the first epoch's
        seconds (the wall time a methods sweep reports), not hidden in the set-up.
        """
        if self.options.standardize:
            self.norm_a.fit(train.audio)
            self.norm_v.fit(train.visual)
        self.factors = None
        self._pending = (train, labels, class_emb)

    def prepare_fit(self, x: torch.Tensor, labels: torch.Tensor, class_emb: torch.Tensor) -> None:
        """Factorise the training system.

        Args:
            x: ``(N, D)`` float32 standardized inputs.
            labels: ``(N,)`` long column index into ``class_emb``.
            class_emb: ``(C, D_W)`` float64 L2-normalised embeddings of the training classes.
        """
        raise NotImplementedError

    @torch.no_grad()
    def fitted_factors(self) -> RidgeFactors:
        """The factorisation of the training part given to :meth:`prepare` (computed on first use, float64).

        Raises:
            RuntimeError: :meth:`prepare` has not been called with the training part.
        """
        if self.factors is None:
            if self._pending is None:
                raise RuntimeError(f"{self.name}: call prepare() with the training part before fit()")
            train, labels, class_emb = self._pending
            self.prepare_fit(self.inputs(train), labels, F.normalize(class_emb.double(), dim=1))
            self._pending = None
            if self.factors is None:
                raise RuntimeError(f"{type(self).__name__}.prepare_fit did not set self.factors")
        return self.factors

    def store_fit(self, setting: int, weight: torch.Tensor, regularisers: tuple[float, ...]) -> None:
        """Keep a fitted ``(D, D_W)`` map and what it was fitted with."""
        self.weight.copy_(weight.to(self.weight.dtype))
        self.setting.fill_(setting)
        self.regulariser.copy_(torch.tensor(regularisers, dtype=torch.float64))

    def training_loss(self, batch: FeatureBatch, labels: torch.Tensor, class_emb: torch.Tensor) -> LossTerms:
        """Closed-form methods have no gradient objective; the protocol calls :meth:`fit` instead."""
        raise RuntimeError(f"{self.name} is fitted in closed form (Method.fit); it has no gradient training")
