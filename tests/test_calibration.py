"""Calibrated stacking on saturated scores: the exact search finds an interior gamma the old [0, 1] grid cannot."""

from __future__ import annotations

import math

import torch

from avzsl.model.calibration import choose_calibration, exact_candidates
from avzsl.model.metrics import gzsl_metrics


def _saturated() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Log-probabilities like the issue's: best seen p about 0.96, unseen p about 1e-7 or a little more.

    3 seen + 2 unseen classes, 20 samples per class. Seen samples score their own class; unseen samples score a seen
    class near 1 and their own class near 1e-7, unseen ones more confidently (1e-5) than seen samples' unseen scores.
    """
    gen = torch.Generator().manual_seed(0)
    rows, labels = [], []
    for c in range(5):
        for _ in range(20):
            p = torch.full((5,), 1e-9, dtype=torch.float64)
            own = 0.96 if c < 3 else 1e-5 * (1 + torch.rand(1, generator=gen).item())
            p[c] = own
            if c >= 3:
                p[0] = 0.96
            else:
                p[3] = 1e-7 * (1 + torch.rand(1, generator=gen).item())
            rows.append(p.log())
            labels.append(c)
    seen = torch.tensor([True, True, True, False, False])
    return torch.stack(rows), torch.tensor(labels), seen


def test_exact_search_is_interior_and_beats_the_probability_grid() -> None:
    scores, labels, seen = _saturated()
    exact = choose_calibration(scores, labels, seen, mode="exact")
    assert not exact.at_edge and exact.edge_optimal is None
    assert exact.low < exact.gamma < exact.high
    assert exact.metrics.S == 1.0 and exact.metrics.U == 1.0 and math.isclose(exact.metrics.H, 1.0, abs_tol=1e-9)
    # The former grid (0..1) cannot reach the gaps of these scores (about 11.5 in log p): every gamma gives H = 0, it
    # stops at an edge, and says that the edge is not optimal.
    legacy = choose_calibration(scores, labels, seen, mode="legacy")
    assert legacy.at_edge and legacy.gamma in (legacy.low, legacy.high) and legacy.edge_optimal is False
    assert legacy.metrics.H < exact.metrics.H and legacy.exact_h == exact.metrics.H
    assert "AT THE EDGE" in legacy.describe() and "NOT optimal" in legacy.describe()


def test_exact_candidates_visit_every_distinct_h() -> None:
    scores, labels, seen = _saturated()
    grid = exact_candidates(scores, seen)
    dense = torch.linspace(float(grid[0]), float(grid[-1]), 4001, dtype=torch.float64)
    best_dense = max(gzsl_metrics(scores, labels, seen, float(g)).H for g in dense[::20])
    best_exact = max(gzsl_metrics(scores, labels, seen, float(g)).H for g in grid)
    assert best_exact >= best_dense
    assert torch.all(grid[1:] > grid[:-1])


def test_an_edge_that_is_really_optimal_is_reported_as_such() -> None:
    # Unseen samples already win without any shift: gamma below every gap (the lower edge) is optimal.
    scores = torch.tensor([[0.0, -5.0], [-5.0, 0.0]], dtype=torch.float64)
    labels = torch.tensor([0, 1])
    seen = torch.tensor([True, False])
    result = choose_calibration(scores, labels, seen, mode="reference")
    assert result.at_edge and result.gamma == 0.0 and result.edge_optimal is True
    assert "really optimal" in result.describe()
