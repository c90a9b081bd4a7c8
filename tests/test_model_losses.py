"""Losses: eq. 5, 7, 9, 10 on hand-computed examples; compute_losses' eq. 8 gradient and variant switches."""

import math

import pytest
import torch

import avzsl.model.losses as losses
from avzsl.model.config import LossConfig, ModelConfig
from avzsl.model.losses import (
    cls_loss,
    compute_losses,
    kd_loss,
    kd_loss_from_logits,
    mask_loss,
    pseudo_masks,
    topk_count,
)
from avzsl.model.networks import CoordinateGeneralize

TINY = ModelConfig(audio_dim=6, visual_dim=5, text_dim=4, att_dim=8, embed_dim=3, mask_hidden=7, embed_hidden=9,
                   att_heads=2, att_ff=10, dropout=0.0)


def test_cls_loss_eq7_numeric():
    p = torch.tensor([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])
    labels = torch.tensor([0, 2])
    row0 = -(math.log(0.7) + math.log(0.8) + math.log(0.9))
    row1 = -(math.log(0.75) + math.log(0.75) + math.log(0.5))
    assert cls_loss(p, labels).item() == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_cls_loss_finite_at_saturated_scores():
    p = torch.tensor([[1.0, 0.0]], requires_grad=True)
    loss = cls_loss(p, torch.tensor([1]))
    loss.backward()
    assert math.isfinite(loss.item()) and torch.isfinite(p.grad).all()
    assert loss.item() == pytest.approx(-2 * math.log(losses.BCE_EPS), rel=1e-5)


def test_kd_loss_eq5_numeric():
    p_v = torch.tensor([[0.5, 0.5]])
    p_a = torch.tensor([[0.9, 0.1]])
    kl_va = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
    kl_av = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    assert kd_loss(p_v, p_a).item() == pytest.approx(0.5 * (kl_va + kl_av), rel=1e-6)
    # logits whose softmax is (p_v, p_a) give the same value
    assert kd_loss_from_logits(p_v.log(), p_a.log()).item() == pytest.approx(0.5 * (kl_va + kl_av), rel=1e-6)
    assert kd_loss(p_v, p_v).item() == pytest.approx(0.0, abs=1e-7)


def test_kd_loss_is_mutual():
    logits_v = torch.randn(3, 4, requires_grad=True)
    logits_a = torch.randn(3, 4, requires_grad=True)
    kd_loss_from_logits(logits_v, logits_a).backward()
    assert logits_v.grad.abs().sum() > 0 and logits_a.grad.abs().sum() > 0


GRAD = torch.tensor([[0.1, -0.5, 0.3, 0.05], [-0.2, 0.1, 0.0, 0.4]])


@pytest.mark.parametrize(
    "topk_by, scope, expected",
    [
        ("magnitude", "sample", [[0, 1, 1, 0], [1, 0, 0, 1]]),
        ("value", "sample", [[1, 0, 1, 0], [0, 1, 0, 1]]),
        # sum |g| = [.3, .6, .3, .45] -> columns 1, 3 for every row
        ("magnitude", "batch", [[0, 1, 0, 1], [0, 1, 0, 1]]),
        # sum g = [-.1, -.4, .3, .45] -> columns 2, 3
        ("value", "batch", [[0, 0, 1, 1], [0, 0, 1, 1]]),
    ],
)
def test_pseudo_masks_eq9(topk_by, scope, expected):
    out = pseudo_masks(GRAD, 0.5, topk_by, scope)
    assert out.dtype == GRAD.dtype
    assert out.tolist() == expected


def test_pseudo_masks_ratio_zero_and_one():
    assert pseudo_masks(GRAD, 0.0).sum() == 0
    assert pseudo_masks(GRAD, 1.0).tolist() == [[1.0] * 4] * 2


def test_topk_rounding_is_half_up():
    assert [topk_count(r, 10) for r in (0.0, 0.04, 0.05, 0.14, 0.15, 0.25, 1.0)] == [0, 0, 1, 1, 2, 3, 10]
    assert topk_count(0.1, 512) == 51 and topk_count(0.2, 512) == 102
    assert pseudo_masks(torch.randn(3, 10), 0.25).sum(dim=1).tolist() == [3.0, 3.0, 3.0]


PSEUDO = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
MASK = torch.tensor([[0.8, 0.4], [0.5, 0.5]])


@pytest.mark.parametrize(
    "norm, expected",
    [("l2", (math.sqrt(0.2) + math.sqrt(0.5)) / 2), ("l1", (0.6 + 1.0) / 2), ("mse", (0.04 + 0.16 + 0.25 + 0.25) / 4)],
)
def test_mask_loss_eq10(norm, expected):
    assert mask_loss(PSEUDO, MASK, norm).item() == pytest.approx(expected, rel=1e-6)


def test_mask_loss_gradient_only_into_learned_mask():
    pseudo = PSEUDO.clone().requires_grad_(True)
    mask = MASK.clone().requires_grad_(True)
    mask_loss(pseudo, mask, "l2").backward()
    assert pseudo.grad is None and mask.grad.abs().sum() > 0


def _batch(seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(5, 6, generator=g, dtype=dtype)
    v = torch.randn(5, 5, generator=g, dtype=dtype)
    w = torch.randn(3, 4, generator=g, dtype=dtype)
    y = torch.tensor([0, 1, 2, 0, 1])
    return a, v, w, y


def test_compute_losses_gradient_eq8_matches_finite_differences(monkeypatch):
    torch.manual_seed(0)
    model = CoordinateGeneralize(TINY).double()
    a, v, w, y = _batch(dtype=torch.float64)
    seen_grads = []
    real = losses.pseudo_masks

    def spy(grad, *args):
        seen_grads.append(grad.clone())
        return real(grad, *args)

    monkeypatch.setattr(losses, "pseudo_masks", spy)
    out = compute_losses(model, a, v, y, w, LossConfig())
    g_v, g_a = seen_grads
    # Independent eq. 8: central finite differences of L_CLS w.r.t. the unmasked inputs. Samples do not interact,
    # so perturbing x[i, j] changes only sample i's term of the batch mean: one forward over all perturbed rows.
    h = 1e-6
    n = a.shape[0]

    def fd(x_name):
        x = v if x_name == "v" else a
        rows, d = x.shape
        eye = torch.eye(d, dtype=x.dtype) * h
        xp = (x[:, None, :] + eye).reshape(-1, d)  # (rows * d, d), row i*d + j = x_i + h e_j
        xm = (x[:, None, :] - eye).reshape(-1, d)
        other = (a if x_name == "v" else v).repeat_interleave(d, dim=0)
        labels = y.repeat_interleave(d)
        with torch.no_grad():
            pp = model(other, xp, w).p if x_name == "v" else model(xp, other, w).p
            pm = model(other, xm, w).p if x_name == "v" else model(xm, other, w).p
        lp = torch.stack([cls_loss(pp[k:k + 1], labels[k:k + 1]) for k in range(len(labels))])
        lm = torch.stack([cls_loss(pm[k:k + 1], labels[k:k + 1]) for k in range(len(labels))])
        return ((lp - lm) / (2 * h * n)).reshape(rows, d)

    assert g_v.abs().max() > 1e-3 and g_a.abs().max() > 1e-3  # a non-trivial check
    assert torch.allclose(g_v, fd("v"), atol=1e-7)
    assert torch.allclose(g_a, fd("a"), atol=1e-7)
    # the mask term is built from exactly these gradients
    expected_mask = mask_loss(real(g_v, 0.1), out.output.mask_v) + mask_loss(real(g_a, 0.1), out.output.mask_a)
    assert out.mask.item() == pytest.approx(expected_mask.item())
    # autograd.grad w.r.t. inputs leaves the parameter gradients untouched until the caller's backward
    assert all(p.grad is None for p in model.parameters())
    out.total.backward()
    assert all(p.grad is not None for p in model.parameters())


@pytest.mark.parametrize("variant", ["cls", "cls+kd", "cls+kd+mask"])
def test_compute_losses_variants(variant):
    torch.manual_seed(0)
    model = CoordinateGeneralize(TINY)
    a, v, w, y = _batch()
    cfg = LossConfig(variant=variant, lambda_kd=0.7, lambda_mask=0.3)
    out = compute_losses(model, a, v, y, w, cfg)
    assert out.cls.item() == pytest.approx(cls_loss(out.output.p, y).item())
    kd_on, mask_on = variant != "cls", variant == "cls+kd+mask"
    assert (out.kd.item() > 0) == kd_on and (out.mask.item() > 0) == mask_on
    expected = out.cls + 0.7 * out.kd + 0.3 * out.mask
    assert out.total.item() == pytest.approx(expected.item(), rel=1e-6)
    assert out.total.requires_grad


def test_compute_losses_does_not_modify_caller_inputs():
    model = CoordinateGeneralize(TINY)
    a, v, w, y = _batch()
    compute_losses(model, a, v, y, w, LossConfig())
    assert not a.requires_grad and not v.requires_grad and a.grad is None
