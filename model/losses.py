"""Training objective of "Coordinate and Generalize" (eq. 5, 7-11).

``compute_losses`` is the training hot path: one forward, one extra input-gradient pass (only when the mask loss
is on), and the three loss terms; the caller runs ``total.backward()`` and the optimizer step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from avzsl.model.config import MASK_NORMS, PSEUDO_MASK_SCOPES, TOPK_BY, LossConfig
from avzsl.model.networks import CoordinateGeneralize, ModelOutput

BCE_EPS = 1e-12
"""Floor of p and of 1 - p inside the logs of eq. 7. Same order as PyTorch's BCE gradient floor (1e-12): the
clamp only bites for scores within ~1e-12 of 0 or 1, so gradients are exact everywhere else. 1 - p is clamped
directly (instead of p at 1 - eps) because 1 - 1e-12 rounds to 1 in float32."""

KD_EPS = 1e-12
"""Floor of probabilities inside the logs of ``kd_loss`` (softmax outputs can underflow to 0 in float32, and
0 * log 0 would be NaN). ``kd_loss_from_logits`` needs no floor."""


def cls_loss(p: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 7: binary cross-entropy of the fused scores against one-hot labels.

    Args:
        p: (B, C) fused similarity scores in [0, 1] (eq. 6).
        labels: (B,) long, column index of each sample's class.

    Returns:
        Scalar: -sum_c (y[c] log p[c] + (1 - y[c]) log(1 - p[c])), summed over classes, mean over the batch.
    """
    y = F.one_hot(labels, num_classes=p.shape[1]).to(p.dtype)
    log_p = p.clamp_min(BCE_EPS).log()
    log_1mp = (1.0 - p).clamp_min(BCE_EPS).log()
    return -(y * log_p + (1.0 - y) * log_1mp).sum(dim=1).mean()


def kd_loss(p_v: torch.Tensor, p_a: torch.Tensor) -> torch.Tensor:
    """Eq. 5: symmetric KL 0.5 (KL(p_v || p_a) + KL(p_a || p_v)) of two (B, C) distributions, mean over batch.

    Mutual distillation: neither side is detached, so each branch is pulled towards the other and gradients flow
    into both. Probabilities are floored at ``KD_EPS`` inside the logs.
    """
    log_v = p_v.clamp_min(KD_EPS).log()
    log_a = p_a.clamp_min(KD_EPS).log()
    # KL(p_v||p_a) + KL(p_a||p_v) = sum_c (p_v - p_a)(log p_v - log p_a)
    return 0.5 * ((p_v - p_a) * (log_v - log_a)).sum(dim=1).mean()


def kd_loss_from_logits(logits_v: torch.Tensor, logits_a: torch.Tensor) -> torch.Tensor:
    """Eq. 5 computed from the (B, C) logits of eq. 3/4 with log-softmax: same value as ``kd_loss``, no floor."""
    log_v = logits_v.log_softmax(dim=1)
    log_a = logits_a.log_softmax(dim=1)
    return 0.5 * ((log_v.exp() - log_a.exp()) * (log_v - log_a)).sum(dim=1).mean()


def topk_count(ratio: float, dim: int) -> int:
    """k of eq. 9: ratio * dim rounded half up (0.5 -> 1, never banker's rounding), clipped to [0, dim]."""
    return min(dim, max(0, math.floor(ratio * dim + 0.5)))


def pseudo_masks(grad: torch.Tensor, ratio: float, topk_by: str = "magnitude", scope: str = "sample") -> torch.Tensor:
    """Eq. 9: binary pseudo masks marking the top-k elements of a gradient.

    Args:
        grad: (B, D) gradient of L_CLS w.r.t. the input features (eq. 8).
        ratio: rho, the proportion of elements set to 1; k = ``topk_count(ratio, D)``.
        topk_by: "magnitude" ranks |g|, "value" ranks the signed g.
        scope: "sample" takes the top-k of each row; "batch" sums the ranking score over the batch and gives every
            row the same mask.

    Returns:
        (B, D) float tensor of 0/1 (no grad). Ties among equal scores are broken by ``torch.topk``.
    """
    if topk_by not in TOPK_BY:
        raise ValueError(f"topk_by must be one of {TOPK_BY}, got {topk_by!r}")
    if scope not in PSEUDO_MASK_SCOPES:
        raise ValueError(f"scope must be one of {PSEUDO_MASK_SCOPES}, got {scope!r}")
    grad = grad.detach()
    k = topk_count(ratio, grad.shape[1])
    out = torch.zeros_like(grad)
    if k == 0:
        return out
    score = grad.abs() if topk_by == "magnitude" else grad
    if scope == "batch":
        idx = score.sum(dim=0, keepdim=True).topk(k, dim=1).indices  # (1, k)
        out[:, idx[0]] = 1.0
    else:
        out.scatter_(1, score.topk(k, dim=1).indices, 1.0)
    return out


def mask_loss(pseudo: torch.Tensor, mask: torch.Tensor, norm: str = "l2") -> torch.Tensor:
    """Eq. 10 for one modality: distance between the pseudo mask and the learned mask.

    Args:
        pseudo: (B, D) 0/1 pseudo mask (eq. 9), treated as a constant.
        mask: (B, D) learned soft mask m (eq. 1).
        norm: "l2": mean over batch of ||pseudo - m||_2; "l1": mean over batch of ||pseudo - m||_1;
            "mse": mean of (pseudo - m)^2 over all elements.
    """
    diff = pseudo.detach() - mask
    if norm == "l2":
        return torch.linalg.vector_norm(diff, ord=2, dim=1).mean()
    if norm == "l1":
        return diff.abs().sum(dim=1).mean()
    if norm == "mse":
        return diff.pow(2).mean()
    raise ValueError(f"norm must be one of {MASK_NORMS}, got {norm!r}")


@dataclass
class LossOutput:
    """Loss terms of one training step; terms switched off by the variant are 0."""

    total: torch.Tensor
    """Scalar L of eq. 11 (call ``.backward()`` on it)."""
    cls: torch.Tensor
    """Scalar L_CLS, eq. 7."""
    kd: torch.Tensor
    """Scalar L_KD, eq. 5 (unweighted)."""
    mask: torch.Tensor
    """Scalar L_M, eq. 10 (unweighted, visual + audio)."""
    output: ModelOutput
    """The forward pass the losses were computed from."""


def compute_losses(model: CoordinateGeneralize, audio: torch.Tensor, visual: torch.Tensor, labels: torch.Tensor,
                   class_emb: torch.Tensor, cfg: LossConfig) -> LossOutput:
    """One training step's objective L = L_CLS + lambda_kd L_KD + lambda_mask L_M (eq. 11).

    With the mask loss on, g_v = dL_CLS/dv and g_a = dL_CLS/da (eq. 8) are taken w.r.t. the original, unmasked
    input features (through both v * m_v and m_v = psi_V(v)) in the same forward pass (same dropout), without
    touching parameter gradients; the pseudo masks built from them are constants.

    Args:
        model: the network (its train/eval mode is the caller's business).
        audio: (B, D_A) audio features.
        visual: (B, D_V) visual features.
        labels: (B,) long, column index into ``class_emb``.
        class_emb: (C, D_W) class-name embeddings of the training classes.
        cfg: which terms are on and their weights.
    """
    zero = audio.new_zeros(())
    if cfg.use_mask:
        # Fresh leaves so the input gradient is exactly dL_CLS/d(input), whatever the caller passed in.
        audio = audio.detach().requires_grad_(True)
        visual = visual.detach().requires_grad_(True)
    out = model(audio, visual, class_emb)
    l_cls = cls_loss(out.p, labels)
    total = l_cls
    l_kd = zero
    if cfg.use_kd:
        l_kd = kd_loss_from_logits(out.logits_v, out.logits_a)
        total = total + cfg.lambda_kd * l_kd
    l_mask = zero
    if cfg.use_mask:
        # retain_graph: the same graph is reused by total.backward(); no create_graph since the masks are constants.
        # Gradients w.r.t. the features the masks multiply (identical to the raw inputs unless standardized).
        g_v, g_a = torch.autograd.grad(l_cls, (out.visual_in, out.audio_in), retain_graph=True)
        pm_v = pseudo_masks(g_v, cfg.ones_ratio, cfg.topk_by, cfg.pseudo_mask_scope)
        pm_a = pseudo_masks(g_a, cfg.ones_ratio, cfg.topk_by, cfg.pseudo_mask_scope)
        l_mask = mask_loss(pm_v, out.mask_v, cfg.mask_norm) + mask_loss(pm_a, out.mask_a, cfg.mask_norm)
        total = total + cfg.lambda_mask * l_mask
    return LossOutput(total=total, cls=l_cls, kd=l_kd, mask=l_mask, output=out)
