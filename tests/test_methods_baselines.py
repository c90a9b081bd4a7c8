"""Table 2 baselines as registered methods: shapes, learning on a toy problem, hand-checked loss terms."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from avzsl.model.ale import rank_weights
from avzsl.model.baseline_common import InputStandardizer, in_batch_negatives
from avzsl.model.cjme import attention_target, weighted_triplets
from avzsl.model.devise import hinge_costs
from avzsl.model.registry import get_method, method_options, options_to_dict
from tests.methods_toy import accuracy, build, one_thread, toy_problem, train_steps  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {
    "avca": {"encoder_hidden": 32, "decoder_hidden": 32, "joint_dim": 24, "heads": 2, "head_dim": 12, "mlp_dim": 16,
             "dim_out": 16},
    "cjme": {"hidden": 32, "text_hidden": 16, "embed_dim": 16},
    "avgzslnet": {"hidden": 32, "text_hidden": 16, "embed_dim": 16, "decoder_hidden": 16, "embedding_dropout": 0.2},
    "devise": {},
    "ale": {},
    "sje": {},
    "ce_probe": {"hidden": 32},
}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_method_learns_toy_problem_and_scores_are_higher_is_better(name: str) -> None:
    batch, labels, emb = toy_problem()
    method = build(name, **SMALL[name])
    assert not get_method(name).needs_sequences and get_method(name).trainable
    with torch.no_grad():
        method.eval()
        scores = method.scores(batch, emb)
    assert scores.shape == (len(labels), emb.shape[0]) and torch.isfinite(scores).all()
    losses = train_steps(method, batch, labels, emb, steps=60)
    assert all(math.isfinite(v) for v in losses)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, f"{name}: loss {first:.4f} -> {last:.4f}"
    # 5 classes: chance is 20 %. A sign error in the scores (distance instead of negated distance) would put the
    # true class last, far below chance.
    acc = accuracy(method, batch, labels, emb)
    assert acc > 0.6, f"{name}: training accuracy {acc:.2f}"


@pytest.mark.parametrize("name", sorted(SMALL))
def test_options_round_trip(name: str) -> None:
    opts = method_options(name, SMALL[name])
    assert method_options(name, options_to_dict(opts)) == opts
    with pytest.raises(ValueError, match="unknown option"):
        method_options(name, {"no_such_option": 1})
    assert dataclasses.is_dataclass(opts)


def test_distance_scores_pick_the_nearest_class() -> None:
    # DeViSE scores by (negated) L2 distance in the text space like the reference: the best class is the nearest
    # class embedding to the projected features, even when another class has the larger dot product.
    method = build("devise", dropout=0.0)
    with torch.no_grad():
        method.bilinear.weight.zero_()
        method.bilinear.weight[0, 0] = 1.0  # projected feature = (x_v0, 0, ..., 0)
    emb = torch.zeros(2, 8)
    emb[0, 0] = 1.0  # distance 0 from (1, 0, ...), dot 1
    emb[1, 0] = 3.0  # distance 2, dot 3
    feats = torch.zeros(1, 10)
    feats[0, 0] = 1.0
    from avzsl.model.registry import FeatureBatch
    b = FeatureBatch(torch.zeros(1, 12), feats)
    method.eval()
    assert method.scores(b, emb).argmax().item() == 0
    dot = build("devise", dropout=0.0, score="dot")
    dot.load_state_dict(method.state_dict())
    dot.eval()
    assert dot.scores(b, emb).argmax().item() == 1


def test_ranking_losses_by_hand() -> None:
    compat = torch.tensor([[1.0, 0.95, 0.5], [0.2, 0.4, 0.25]])
    labels = torch.tensor([0, 0])
    costs = hinge_costs(compat, labels, margin=0.1)
    torch.testing.assert_close(costs, torch.tensor([[0.0, 0.05, 0.0], [0.0, 0.3, 0.15]]))
    devise, ale, sje = build("devise"), build("ale"), build("sje")
    # DeViSE: all violations summed, averaged over the batch: (0.05 + 0.45) / 2.
    assert devise.ranking_loss(costs).item() == pytest.approx(0.25)
    # SJE: only the worst violation: (0.05 + 0.3) / 2.
    assert sje.ranking_loss(costs).item() == pytest.approx(0.175)
    # ALE: rank r=1 -> weight H_1/1 = 1; r=2 -> (1 + 1/2)/2 = 0.75: (0.05 + 0.75 * 0.45) / 2.
    torch.testing.assert_close(rank_weights(costs).squeeze(1), torch.tensor([1.0, 0.75]))
    assert ale.ranking_loss(costs).item() == pytest.approx((0.05 + 0.3375) / 2)


def test_cjme_attention_target_and_reference_weighting() -> None:
    ent_a = torch.tensor([1.0, 0.5, 1.0])
    ent_v = torch.tensor([0.5, 1.0, 1.05])
    # audio more uncertain -> 1 (use video); video more uncertain -> 0; within epsilon -> 0.5.
    torch.testing.assert_close(attention_target(ent_a, ent_v, 0.1), torch.tensor([1.0, 0.0, 0.5]))
    w = torch.tensor([[0.2], [0.9]])
    l_ta, l_tv = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 0.0])
    # The reference's expression, (B, 1) * (B,) broadcast to (B, B) and averaged.
    reference = ((1 - w) * l_ta + w * l_tv).mean()
    torch.testing.assert_close(weighted_triplets(w, l_ta, l_tv, per_sample=False), reference)
    per_sample = torch.tensor([0.8 * 1.0 + 0.2 * 2.0, 0.1 * 3.0 + 0.9 * 0.0]).mean()
    torch.testing.assert_close(weighted_triplets(w, l_ta, l_tv, per_sample=True), per_sample)


def test_avgzslnet_decoder_reconstructs_unit_vectors() -> None:
    method = build("avgzslnet", **SMALL["avgzslnet"])
    method.eval()
    out = method._decode(torch.randn(3, 16))
    torch.testing.assert_close(out.norm(dim=1), torch.ones(3))


def test_in_batch_negatives_have_another_class() -> None:
    torch.manual_seed(0)
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    for _ in range(20):
        neg = in_batch_negatives(labels)
        assert (labels[neg] != labels).all()
    # One class only: no negative exists; each sample is its own (documented) fallback.
    assert in_batch_negatives(torch.tensor([3, 3])).tolist() == [0, 1]


def test_ce_probe_standardizes_with_training_statistics() -> None:
    batch, labels, emb = toy_problem()
    batch.audio += 100.0
    method = build("ce_probe", **SMALL["ce_probe"])
    method.prepare(batch, labels, emb)
    torch.testing.assert_close(method.norm_a(batch.audio).mean(dim=0), torch.zeros(12), atol=1e-4, rtol=0)
    method.eval()
    scores = method.scores(batch, emb)
    assert scores.abs().max() <= 1.0 + 1e-5
    no_std = build("ce_probe", standardize=False, **SMALL["ce_probe"])
    no_std.prepare(batch, labels, emb)
    assert torch.equal(no_std.norm_a.mean, torch.zeros(12))
    norm = InputStandardizer(2)
    norm.fit(torch.tensor([[1.0, 5.0], [3.0, 5.0]]))
    assert torch.isfinite(norm(torch.tensor([[2.0, 5.0]]))).all()  # constant dimension: no division by zero
