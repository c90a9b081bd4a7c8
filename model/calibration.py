"""Calibrated stacking: choose the shift gamma subtracted from seen-class scores, on VALIDATION scores only.

Three modes (``CALIBRATION_MODES``), all method-agnostic on a ``(N, C)`` higher-is-better score matrix:

- ``exact`` (default): the true H optimum. With ``gap_i = best seen score - best unseen score`` of sample i, sample i
  is predicted seen exactly when ``gamma < gap_i``, so H is piecewise constant in gamma and only changes at the
  gaps. Evaluating one candidate between every pair of consecutive sorted unique gaps, plus one below the smallest
  (every sample seen) and one above the largest (every sample unseen), visits every distinct value of H: no grid
  can saturate. Above ``max_candidates`` distinct gaps, candidates are taken between gap quantiles instead (H is
  then optimal up to that resolution). Among tied optima the middle one is taken (the centre of the plateau, which
  transfers best to other data).
- ``reference``: the AVCA reference grid ``linspace(0, 3, 16)`` (added to L2 distances there, i.e. subtracted from
  negated distances here), for comparison with published numbers.
- ``legacy``: avzsl's former grid for probabilities in [0, 1] (``metrics.calibration_grid``), applied to the
  method's plain scores; kept to re-evaluate runs made before the exact search.

Every result says whether gamma sits at an edge of its range, and (for the grids) whether that edge is really
optimal: the exact optimum is computed too and compared.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from avzsl.model.metrics import (
    GZSLMetrics,
    _check_inputs,
    _sweep,
    best_on_grid,
    calibration_grid,
    gzsl_metrics,
)

_logger = logging.getLogger(__name__)

CALIBRATION_MODES = ("exact", "reference", "legacy")
REFERENCE_GRID = (0.0, 3.0, 16)
"""``linspace(0, 3, 16)`` of ExplainableML/AVCA-GZSL ``get_best_evaluation``."""
DEFAULT_MAX_CANDIDATES = 2048


@dataclass
class CalibrationResult:
    """The chosen gamma, the validation metrics at it, and where it lies in its range."""

    gamma: float
    metrics: GZSLMetrics
    mode: str
    low: float
    """Smallest candidate searched."""
    high: float
    """Largest candidate searched."""
    at_edge: bool
    """gamma is the smallest or the largest candidate (for ``exact``: every sample predicted seen, or unseen)."""
    edge_optimal: bool | None
    """When ``at_edge``: whether no gamma at all reaches a higher validation H (None when not at an edge)."""
    exact_h: float
    """The best validation H any gamma reaches (the exact optimum)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible summary (no per-class tables)."""
        return {"mode": self.mode, "gamma": self.gamma, "low": self.low, "high": self.high, "at_edge": self.at_edge,
                "edge_optimal": self.edge_optimal, "H": self.metrics.H, "exact_h": self.exact_h}

    def describe(self) -> str:
        """One log line: the value, its range and the edge verdict."""
        text = f"calibration {self.mode}: gamma {self.gamma:.6g} in [{self.low:.6g}, {self.high:.6g}]"
        if self.at_edge:
            verdict = "really optimal" if self.edge_optimal else (
                f"NOT optimal: the best gamma reaches H {self.exact_h * 100:.2f} vs {self.metrics.H * 100:.2f}")
            text += f", AT THE EDGE of its range ({verdict})"
        return text


def exact_candidates(scores: torch.Tensor, seen: torch.Tensor,
                     max_candidates: int = DEFAULT_MAX_CANDIDATES) -> torch.Tensor:
    """Candidate gammas visiting every distinct H: (N, C) scores, (C,) seen mask -> (G,) float64 ascending.

    Midpoints between consecutive sorted unique gaps plus one value below the smallest and one above the largest
    (at a distance of the gap spread, at least 1, so the two edge candidates are clearly outside). With more than
    ``max_candidates`` unique gaps, midpoints between ``max_candidates`` gap quantiles are used instead.
    """
    seen_idx = seen.nonzero().flatten()
    unseen_idx = (~seen).nonzero().flatten()
    if len(seen_idx) == 0 or len(unseen_idx) == 0 or scores.shape[0] == 0:
        return torch.zeros(1, dtype=torch.float64)
    s = scores.double()
    gaps = s[:, seen_idx].max(dim=1).values - s[:, unseen_idx].max(dim=1).values
    finite = gaps[torch.isfinite(gaps)]
    if finite.numel() == 0:
        return torch.zeros(1, dtype=torch.float64)
    points = torch.unique(finite)  # sorted
    if points.numel() > max_candidates:
        q = torch.linspace(0.0, 1.0, max_candidates, dtype=torch.float64)
        points = torch.unique(torch.quantile(finite, q))
    margin = max(1.0, float(points[-1] - points[0]))
    mids = (points[1:] + points[:-1]) / 2.0
    return torch.cat((points[:1] - margin, mids, points[-1:] + margin))


def _grid(mode: str, scores: torch.Tensor, seen: torch.Tensor, max_candidates: int) -> torch.Tensor:
    if mode == "exact":
        return exact_candidates(scores, seen, max_candidates)
    if mode == "reference":
        lo, hi, n = REFERENCE_GRID
        return torch.linspace(lo, hi, n, dtype=torch.float64)
    if mode == "legacy":
        return calibration_grid()
    raise ValueError(f"calibration mode must be one of {CALIBRATION_MODES}, got {mode!r}")


def choose_calibration(scores: torch.Tensor, labels: torch.Tensor, seen: torch.Tensor, mode: str = "exact",
                       max_candidates: int = DEFAULT_MAX_CANDIDATES) -> CalibrationResult:
    """Choose gamma by best H on (validation) ``scores`` (N, C), ``labels`` (N,), ``seen`` (C,) bool.

    Grid modes break ties towards the smallest gamma (as before); ``exact`` takes the middle of the tied optima.

    Raises:
        ValueError: unknown mode, or H undefined (no seen or no unseen samples).
    """
    _check_inputs(scores, labels, seen)
    scores = scores.detach().cpu()
    labels = labels.detach().cpu().long()
    seen = seen.detach().cpu()
    grid = torch.sort(_grid(mode, scores, seen, max_candidates)).values
    best = best_on_grid(scores, labels, seen, grid, middle=mode == "exact")
    gamma = float(grid[best])
    metrics = gzsl_metrics(scores, labels, seen, gamma)
    if mode == "exact":
        exact_h = metrics.H
    else:
        exact_grid = exact_candidates(scores, seen, max_candidates)
        exact_h = float(torch.nan_to_num(_sweep(scores, labels, seen, exact_grid)[2], nan=-1.0).max())
    at_edge = best in (0, len(grid) - 1) and len(grid) > 1
    edge_optimal = (exact_h - 1e-12 <= metrics.H) if at_edge else None
    return CalibrationResult(gamma=gamma, metrics=metrics, mode=mode, low=float(grid[0]), high=float(grid[-1]),
                             at_edge=at_edge, edge_optimal=edge_optimal, exact_h=exact_h)
