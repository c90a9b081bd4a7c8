"""ESZSL: "An embarrassingly simple approach to zero-shot learning" (Romera-Paredes & Torr, ICML 2015).

The paper's objective ``||X^T V S - Y||^2 + gamma ||V S||^2 + lambda ||X^T V||^2 + gamma lambda ||V||^2`` has the
closed form ``V = (X X^T + gamma I)^-1 X Y S^T (S S^T + lambda I)^-1`` (paper: X is D x N, Y is N x Z in {-1, 1},
S is A x Z attributes). Here, with row-major data (X: ``(N, D)`` standardized ``[a, v]`` features, S: ``(Z, D_W)``
L2-normalised embeddings of the Z training classes, Y: ``(N, Z)``, +1 at the label and -1 elsewhere as in the
paper)::

    V = (X^T X + gamma I)^-1 X^T Y S (S^T S + lambda I)^-1      (D, D_W)
    score(x, c) = x V e_c                                        (e_c: L2-normalised embedding of candidate c)

i.e. a ridge regression onto the targets ``Y S`` (:class:`RidgeFactors`, float64) followed by a ridge solve on the
class side. ``gamma = gammas[i] * trace(X^T X) / D`` and ``lambda = lambdas[j] * trace(S^T S) / D_W``; stage 1
fits every ``(i, j)`` (setting ``i * len(lambdas) + j``) and keeps the pair with the best validation H, stage 2
refits it on its training part.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from avzsl.model.closed_form import DECADE_GRID, ClosedFormMethod, RidgeFactors, checked_grid
from avzsl.model.registry import FeatureBatch, register_method


@dataclass(frozen=True)
class ESZSLOptions:
    """Options of ESZSL."""

    gammas: tuple[float, ...] = DECADE_GRID
    """Feature-side regulariser grid (the paper's gamma, not the calibration gamma), relative to
    ``trace(X^T X) / D``."""
    lambdas: tuple[float, ...] = DECADE_GRID
    """Class-side regulariser grid, relative to ``trace(S^T S) / D_W``. Stage 1 searches all pairs, gamma-major
    (ties: the first)."""
    standardize: bool = True
    """z-score audio and visual features with training-part statistics (False: raw features)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "gammas", checked_grid(self.gammas, "gammas"))
        object.__setattr__(self, "lambdas", checked_grid(self.lambdas, "lambdas"))


@register_method("eszsl", description="ESZSL (Romera-Paredes & Torr, ICML 2015): bilinear closed form on "
                 "standardized [a, v], gamma and lambda chosen on stage-1 validation H (no gradient training)")
class ESZSL(ClosedFormMethod):
    """Inputs ``(B, D_A)``, ``(B, D_V)``; class embeddings ``(C, D_W)``; scores ``(B, C)`` bilinear compatibilities."""

    Options = ESZSLOptions
    num_regularisers = 2

    def prepare_fit(self, x: torch.Tensor, labels: torch.Tensor, class_emb: torch.Tensor) -> None:
        # Row c of Y S for a video of class c: +s_c and -s_z for every other z, i.e. 2 s_c - sum_z s_z.
        class_targets = 2.0 * class_emb - class_emb.sum(0, keepdim=True)  # (Z, D_W)
        self.factors = RidgeFactors(x, labels, class_targets)
        self._y_sq = float(x.shape[0] * class_emb.shape[0])  # ||Y||^2: every entry is +-1
        self._s_gram = class_emb.T @ class_emb  # (D_W, D_W)
        s_eig, self._s_vecs = torch.linalg.eigh(self._s_gram)
        self._s_eig = s_eig.clamp_min(0.0)
        self._s_scale = float(self._s_eig.sum()) / class_emb.shape[1]

    def fit_settings(self) -> int:
        return len(self.options.gammas) * len(self.options.lambdas)

    @torch.no_grad()
    def fit(self, setting: int) -> dict[str, float]:
        factors = self.fitted_factors()
        i, j = divmod(setting, len(self.options.lambdas))
        gamma = self.options.gammas[i] * factors.scale
        lam = self.options.lambdas[j] * self._s_scale
        class_side = (self._s_vecs / (self._s_eig + lam)) @ self._s_vecs.T  # (S^T S + lambda I)^-1
        coef = factors.coefficients(gamma) @ class_side  # (r, D_W)
        self.store_fit(setting, factors.weights(coef), (gamma, lam))
        mse = factors.squared_error(coef, self._y_sq, right=self._s_gram) / factors.n
        # "reg_" keys: the epoch record's own "gamma" is the calibration shift.
        return {"loss": mse, "reg_gamma": self.options.gammas[i], "reg_lambda": self.options.lambdas[j],
                "reg_gamma_abs": gamma, "reg_lambda_abs": lam}

    def scores(self, batch: FeatureBatch, class_emb: torch.Tensor) -> torch.Tensor:
        return (self.inputs(batch) @ self.weight) @ F.normalize(class_emb.float(), dim=1).T
