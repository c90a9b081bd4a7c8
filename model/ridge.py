"""Ridge regression into the class-embedding space: the closed-form floor of the method comparison (issue 18).

Not from a paper; the plainest zero-shot transfer there is. With ``x = [a, v]`` the standardized, concatenated
features of a video (statistics of the training part) and ``s_y`` the L2-normalised class embedding of its label::

    W = argmin_W ||X W - S_Y||^2 + lambda ||W||^2          (X: (N, D), S_Y: (N, D_W), W: (D, D_W))
    score(x, c) = cos(x W, e_c)

solved in float64 in closed form (primal or dual, whichever system is smaller; :class:`RidgeFactors`). ``lambda``
is ``lambdas[i] * trace(X^T X) / D``; stage 1 fits every ``i`` and keeps the one with the best validation H (the
protocol's e*, with its calibration), stage 2 refits that one on its training part.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from avzsl.model.closed_form import DECADE_GRID, ClosedFormMethod, RidgeFactors, checked_grid
from avzsl.model.registry import FeatureBatch, register_method


@dataclass(frozen=True)
class RidgeOptions:
    """Options of the ridge baseline."""

    lambdas: tuple[float, ...] = DECADE_GRID
    """Regulariser grid relative to ``trace(X^T X) / D`` (about N for standardized inputs), searched in stage 1 in
    this order (ties: the first)."""
    standardize: bool = True
    """z-score audio and visual features with training-part statistics (False: raw features)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "lambdas", checked_grid(self.lambdas, "lambdas"))


@register_method("ridge", description="Ridge regression of standardized [a, v] onto the class embeddings, cosine "
                 "scores; closed form, lambda chosen on stage-1 validation H (no gradient training)")
class Ridge(ClosedFormMethod):
    """Inputs ``(B, D_A)``, ``(B, D_V)``; class embeddings ``(C, D_W)``; scores ``(B, C)`` cosines in [-1, 1]."""

    Options = RidgeOptions

    def prepare_fit(self, x: torch.Tensor, labels: torch.Tensor, class_emb: torch.Tensor) -> None:
        self.factors = RidgeFactors(x, labels, class_emb)  # target of a video: its class's unit embedding

    def fit_settings(self) -> int:
        return len(self.options.lambdas)

    @torch.no_grad()
    def fit(self, setting: int) -> dict[str, float]:
        factors = self.fitted_factors()
        relative = self.options.lambdas[setting]
        lam = relative * factors.scale
        coef = factors.coefficients(lam)
        self.store_fit(setting, factors.weights(coef), (lam,))
        mse = factors.squared_error(coef, factors.target_sq) / factors.n
        return {"loss": mse, "reg_lambda": relative, "reg_lambda_abs": lam}

    def scores(self, batch: FeatureBatch, class_emb: torch.Tensor) -> torch.Tensor:
        projected = self.inputs(batch) @ self.weight  # (B, D_W)
        return F.normalize(projected, dim=1) @ F.normalize(class_emb.float(), dim=1).T
