"""Metrics (S, U, H, ZSL, calibrated stacking) on a hand-checked score matrix, and predict_scores."""

import math

import pytest
import torch

from avzsl.model.config import ModelConfig
from avzsl.model.metrics import (
    H_EPS,
    calibration_grid,
    gzsl_metrics,
    per_class_accuracy,
    search_calibration,
)
from avzsl.model.networks import CoordinateGeneralize
from avzsl.model.scoring import predict_scores

# columns 0, 1 seen; 2, 3 unseen
SEEN = torch.tensor([True, True, False, False])
SCORES = torch.tensor([
    [0.60, 0.10, 0.25, 0.05],  # label 0: right at gamma 0, becomes 2 at gamma 0.4
    [0.30, 0.50, 0.05, 0.15],  # label 0: wrong (1), becomes 3 at gamma 0.4
    [0.10, 0.70, 0.10, 0.10],  # label 1: right at both
    [0.50, 0.10, 0.30, 0.10],  # label 2: wrong (0) at gamma 0, right at gamma 0.4
    [0.10, 0.10, 0.20, 0.60],  # label 3: right
    [0.10, 0.30, 0.35, 0.25],  # label 3: wrong (2); in ZSL also 2
])
LABELS = torch.tensor([0, 0, 1, 2, 3, 3])


def test_gzsl_metrics_without_calibration():
    m = gzsl_metrics(SCORES, LABELS, SEEN, 0.0)
    assert m.per_class_seen == {0: 0.5, 1: 1.0}
    assert m.per_class_unseen == {2: 0.0, 3: 0.5}
    assert (m.S, m.U) == (0.75, 0.25)
    assert math.isclose(m.H, 2 * 0.75 * 0.25 / (1.0 + H_EPS))
    assert m.ZSL == 0.75  # unseen samples, columns 2/3 only: class 2 right, class 3 one of two
    assert m.gamma == 0.0


def test_calibration_subtracts_from_seen_scores():
    m = gzsl_metrics(SCORES, LABELS, SEEN, 0.4)
    assert m.per_class_seen == {0: 0.0, 1: 1.0}
    assert m.per_class_unseen == {2: 1.0, 3: 0.5}
    assert (m.S, m.U) == (0.5, 0.75)
    assert math.isclose(m.H, 0.6)
    assert m.ZSL == 0.75  # gamma-free
    everything_unseen = gzsl_metrics(SCORES, LABELS, SEEN, 1.0)
    assert everything_unseen.S == 0.0 and everything_unseen.H == 0.0


def test_h_epsilon_matches_reference():
    assert H_EPS == 2.220446049250313e-16  # np.finfo(float).eps
    none_right = gzsl_metrics(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([0, 1]),
                              torch.tensor([True, False]), 0.0)
    assert none_right.H == 0.0 and not math.isnan(none_right.H)


def test_search_picks_best_h_and_smallest_gamma_on_ties():
    gamma, m = search_calibration(SCORES, LABELS, SEEN, torch.tensor([1.0, 0.4, 0.0, 0.45]))
    assert gamma == pytest.approx(0.4) and math.isclose(m.H, 0.6)  # 0.45 gives the same H: smallest wins
    grid = calibration_grid()
    gamma, m = search_calibration(SCORES, LABELS, SEEN)
    brute = [gzsl_metrics(SCORES, LABELS, SEEN, float(g)).H for g in grid]
    best = max(brute)
    assert math.isclose(m.H, best)
    assert gamma == pytest.approx(float(grid[brute.index(best)]))


def test_vectorised_predictions_match_naive_argmax():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(200, 7, generator=g)
    labels = torch.randint(0, 7, (200,), generator=g)
    seen = torch.tensor([True, False, True, True, False, False, True])
    for gamma in (0.0, 0.05, 0.3):
        pred = (scores - gamma * seen.float()).argmax(dim=1)
        naive = per_class_accuracy(pred, labels, range(7))
        m = gzsl_metrics(scores, labels, seen, gamma)
        assert {**m.per_class_seen, **m.per_class_unseen} == pytest.approx(naive)
        assert math.isclose(m.S, sum(naive[c] for c in (0, 2, 3, 6)) / 4)


def test_per_class_accuracy_marks_empty_classes_nan():
    acc = per_class_accuracy(torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1]), [0, 1, 2])
    assert acc[0] == 0.5 and acc[1] == 1.0 and math.isnan(acc[2])


def test_classes_without_samples_are_left_out_of_the_means():
    scores = torch.tensor([[0.9, 0.0, 0.1, 0.0], [0.0, 0.0, 0.8, 0.2]])
    m = gzsl_metrics(scores, torch.tensor([0, 2]), torch.tensor([True, True, False, False]), 0.0)
    assert (m.S, m.U) == (1.0, 1.0) and set(m.per_class_seen) == {0} and set(m.per_class_unseen) == {2}


def test_calibration_grid_and_errors():
    grid = calibration_grid()
    assert grid[0] == 0.0 and grid[-1] == 1.0 and bool((grid[1:] > grid[:-1]).all())
    assert grid.min() == 0.0 and bool(((grid > 0) & (grid < 0.01)).sum() >= 8)  # fine log part
    with pytest.raises(ValueError, match="both seen and unseen"):
        search_calibration(SCORES[:3], LABELS[:3], SEEN, torch.tensor([0.0, 0.1]))  # seen samples only
    with pytest.raises(ValueError, match="column indices"):
        gzsl_metrics(SCORES, LABELS + 1, SEEN, 0.0)
    assert gzsl_metrics(SCORES, LABELS, SEEN, 0.0).to_dict()["per_class_seen"] == {0: 0.5, 1: 1.0}


def test_predict_scores_chunks_and_restores_mode():
    torch.manual_seed(0)
    model = CoordinateGeneralize(ModelConfig(audio_dim=6, visual_dim=5, text_dim=4, att_dim=8, embed_dim=3,
                                             mask_hidden=7, embed_hidden=9, att_heads=2, att_ff=10, dropout=0.5))
    a, v, w = torch.randn(7, 6), torch.randn(7, 5), torch.randn(3, 4)
    model.train()
    scores = predict_scores(model, a, v, w, batch_size=3)
    assert model.training and not scores.requires_grad
    model.eval()
    with torch.no_grad():
        assert torch.allclose(scores, model(a, v, w).p, atol=1e-6)  # eval: dropout off, deterministic
    assert torch.allclose(scores.sum(dim=1), torch.ones(7))
    predict_scores(model, a, v, w)
    assert not model.training
