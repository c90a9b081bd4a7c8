"""AV-GZSL metrics (paper section 5.2) with calibrated stacking, on similarity scores.

Follows the AVCA reference ``get_best_evaluation`` (ExplainableML/AVCA-GZSL, src/utils.py): per-class top-1
accuracy macro-averaged over seen classes (S) and unseen classes (U), H = 2SU / (S + U + eps) with
eps = ``np.finfo(float).eps``, and ZSL = the same per-class accuracy on unseen samples with only unseen classes as
candidates. The reference scores are L2 distances (prediction = argmin, calibration ADDS beta to seen classes);
ours are similarity scores p (prediction = argmax, calibration SUBTRACTS gamma from seen classes).

Every column of the score matrix is a candidate class; pass only the seen and unseen classes of the evaluation
(the reference never predicts other classes). Values are fractions in [0, 1] (the paper reports x100).
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

_logger = logging.getLogger(__name__)

H_EPS = sys.float_info.epsilon
"""eps in H = 2SU / (S + U + eps): the reference's ``np.finfo(float).eps`` = 2.220446049250313e-16."""


@dataclass
class GZSLMetrics:
    """Metrics at one calibration value gamma; accuracies are fractions in [0, 1]."""

    S: float
    """Mean per-class accuracy over seen classes (samples whose label is seen, all classes candidates)."""
    U: float
    """Mean per-class accuracy over unseen classes (samples whose label is unseen, all classes candidates)."""
    H: float
    """Harmonic mean 2SU / (S + U + eps), eq. 13."""
    ZSL: float
    """Mean per-class accuracy on unseen samples with unseen classes as the only candidates (gamma-free)."""
    gamma: float
    """Calibration subtracted from the scores of seen classes."""
    per_class_seen: dict[int, float] = field(default_factory=dict)
    """Column index -> accuracy, for the seen classes that have samples."""
    per_class_unseen: dict[int, float] = field(default_factory=dict)
    """Column index -> GZSL accuracy, for the unseen classes that have samples."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (per-class keys are ints; ``json.dumps`` turns them into strings)."""
        return {"S": self.S, "U": self.U, "H": self.H, "ZSL": self.ZSL, "gamma": self.gamma,
                "per_class_seen": dict(self.per_class_seen), "per_class_unseen": dict(self.per_class_unseen)}


def per_class_accuracy(pred: torch.Tensor, labels: torch.Tensor, classes: Iterable[int]) -> dict[int, float]:
    """Top-1 accuracy of each class: among samples labelled c, the fraction predicted c.

    Args:
        pred: (N,) long predicted column indices.
        labels: (N,) long true column indices.
        classes: the classes to report.

    Returns:
        class -> accuracy; NaN for a class without samples (the reference's 0/0).
    """
    result = {}
    for c in classes:
        c = int(c)
        sel = labels == c
        n = int(sel.sum())
        result[c] = float((pred[sel] == c).sum()) / n if n else math.nan
    return result


def calibration_grid() -> torch.Tensor:
    """Default gamma grid for similarity scores p in [0, 1]: (G,) float64, sorted, unique.

    0 to 1 in steps of 0.01 (gamma = 1 already pushes every seen score below every unseen one) plus 13 log-spaced
    values from 1e-4 to 1e-2 for models whose seen/unseen score gaps are small. The reference searches
    ``linspace(0, 3, 16)`` because it calibrates L2 distances, a different scale.
    """
    coarse = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    fine = torch.logspace(-4.0, -2.0, 13, dtype=torch.float64)
    return torch.unique(torch.cat((coarse, fine)))  # unique also sorts


def _check_inputs(scores: torch.Tensor, labels: torch.Tensor, seen: torch.Tensor) -> None:
    if scores.dim() != 2:
        raise ValueError(f"scores must be (N, C), got {tuple(scores.shape)}")
    n, c = scores.shape
    if labels.shape != (n,):
        raise ValueError(f"labels must be ({n},), got {tuple(labels.shape)}")
    if seen.shape != (c,) or seen.dtype != torch.bool:
        raise ValueError(f"seen must be a ({c},) bool mask, got {tuple(seen.shape)} {seen.dtype}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= c):
        raise ValueError(f"labels must be column indices in [0, {c}), got range [{int(labels.min())}, "
                         f"{int(labels.max())}]")


def _calibrated_predictions(scores: torch.Tensor, seen: torch.Tensor, gammas: torch.Tensor) -> torch.Tensor:
    """argmax over columns of (scores - gamma * seen) for every gamma at once: (N, C), (C,), (G,) -> (G, N).

    Calibration only shifts the seen block, so the winner is the better of the best seen class (on raw scores)
    and the best unseen class; an exact tie goes to the lower column index, like ``argmax`` on the shifted row.
    """
    n = scores.shape[0]
    seen_idx = seen.nonzero().flatten()
    unseen_idx = (~seen).nonzero().flatten()
    if len(seen_idx) == 0 or len(unseen_idx) == 0:
        return scores.argmax(dim=1).expand(len(gammas), n)
    s_scores = scores[:, seen_idx]
    u_scores = scores[:, unseen_idx]
    s_arg = s_scores.argmax(dim=1)
    u_arg = u_scores.argmax(dim=1)
    s_max = s_scores.gather(1, s_arg[:, None]).squeeze(1).double()
    u_max = u_scores.gather(1, u_arg[:, None]).squeeze(1).double()
    s_col = seen_idx[s_arg]
    u_col = unseen_idx[u_arg]
    shifted = s_max[None, :] - gammas.double()[:, None]  # (G, N)
    take_seen = (shifted > u_max[None, :]) | ((shifted == u_max[None, :]) & (s_col < u_col)[None, :])
    return torch.where(take_seen, s_col[None, :], u_col[None, :])


def _accuracy_table(pred: torch.Tensor, labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class accuracy for G prediction rows: (G, N), (N,) -> ((G, C) float64 with NaN where no samples, (C,))."""
    counts = torch.bincount(labels, minlength=num_classes).double()
    hits = torch.zeros(pred.shape[0], num_classes, dtype=torch.float64)
    hits.index_add_(1, labels, (pred == labels[None, :]).double())
    return hits / counts[None, :], counts


def _nanmean_cols(acc: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Mean over the selected columns of (G, C) -> (G,); NaN when no column is selected."""
    if not bool(cols.any()):
        return torch.full((acc.shape[0],), math.nan, dtype=torch.float64)
    return acc[:, cols].mean(dim=1)


def _harmonic(s: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    return 2.0 * s * u / (s + u + H_EPS)


def _zsl(scores: torch.Tensor, labels: torch.Tensor, seen: torch.Tensor) -> float:
    """Mean per-class accuracy on unseen samples, unseen columns as the only candidates."""
    unseen_idx = (~seen).nonzero().flatten()
    rows = ~seen[labels]
    if len(unseen_idx) == 0 or not bool(rows.any()):
        return math.nan
    pred = unseen_idx[scores[rows][:, unseen_idx].argmax(dim=1)]
    acc, counts = _accuracy_table(pred[None, :], labels[rows], scores.shape[1])
    return float(_nanmean_cols(acc, (~seen) & (counts > 0))[0])


def _sweep(scores: torch.Tensor, labels: torch.Tensor, seen: torch.Tensor,
           gammas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """S, U, H (each (G,)), the (G, C) accuracy table and the (C,) sample counts for every gamma."""
    pred = _calibrated_predictions(scores, seen, gammas)
    acc, counts = _accuracy_table(pred, labels, scores.shape[1])
    s = _nanmean_cols(acc, seen & (counts > 0))
    u = _nanmean_cols(acc, (~seen) & (counts > 0))
    return s, u, _harmonic(s, u), acc, counts


def gzsl_metrics(scores: torch.Tensor, labels: torch.Tensor, seen: torch.Tensor, gamma: float) -> GZSLMetrics:
    """S, U, H, ZSL of similarity scores after calibrated stacking with ``gamma``.

    Args:
        scores: (N, C) similarity scores (higher = more similar); every column is a candidate class.
        labels: (N,) long, the true column index of each sample.
        seen: (C,) bool, True for seen classes.
        gamma: subtracted from the seen columns before the argmax.

    Returns:
        The metrics; S (U) averages the seen (unseen) classes that have samples and is NaN if there are none.
    """
    _check_inputs(scores, labels, seen)
    scores = scores.detach().cpu()
    labels = labels.detach().cpu().long()
    seen = seen.detach().cpu()
    s, u, h, acc, counts = _sweep(scores, labels, seen, torch.tensor([float(gamma)], dtype=torch.float64))
    has = counts > 0
    absent = int((~has).sum())
    if absent:
        _logger.warning("%d candidate classes have no samples; S/U average only the classes with samples", absent)
    per_seen = {int(c): float(acc[0, c]) for c in (seen & has).nonzero().flatten()}
    per_unseen = {int(c): float(acc[0, c]) for c in (~seen & has).nonzero().flatten()}
    return GZSLMetrics(S=float(s[0]), U=float(u[0]), H=float(h[0]), ZSL=_zsl(scores, labels, seen),
                       gamma=float(gamma), per_class_seen=per_seen, per_class_unseen=per_unseen)


def search_calibration(scores: torch.Tensor, labels: torch.Tensor, seen: torch.Tensor,
                       grid: torch.Tensor | None = None) -> tuple[float, GZSLMetrics]:
    """Pick the gamma with the best H, evaluated for the whole grid at once. Use it on VALIDATION scores only.

    Args:
        scores: (N, C) similarity scores.
        labels: (N,) long true column indices.
        seen: (C,) bool seen-class mask.
        grid: (G,) candidate gammas; default ``calibration_grid()``.

    Returns:
        (gamma, metrics at gamma). Ties in H go to the smallest gamma.
    """
    _check_inputs(scores, labels, seen)
    grid = calibration_grid() if grid is None else torch.as_tensor(grid, dtype=torch.float64).flatten()
    if grid.numel() == 0:
        raise ValueError("calibration grid is empty")
    grid = torch.sort(grid.cpu()).values
    best = best_on_grid(scores.detach().cpu(), labels.detach().cpu().long(), seen.detach().cpu(), grid)
    gamma = float(grid[best])
    return gamma, gzsl_metrics(scores, labels, seen, gamma)


def best_on_grid(scores: torch.Tensor, labels: torch.Tensor, seen: torch.Tensor, grid: torch.Tensor,
                 middle: bool = False) -> int:
    """Index into the ascending (G,) ``grid`` of the gamma with the best H on CPU ``scores`` (N, C).

    Ties go to the smallest gamma, or with ``middle`` to the middle one of the tied values.

    Raises:
        ValueError: H is undefined (no seen or no unseen samples).
    """
    _, _, h, _, _ = _sweep(scores, labels, seen, grid)
    if bool(torch.isnan(h).all()):
        raise ValueError("H is undefined: calibration needs samples of both seen and unseen classes")
    h = torch.nan_to_num(h, nan=-1.0)
    ties = (h == h.max()).nonzero().flatten()
    return int(ties[len(ties) // 2]) if middle else int(ties[0])
