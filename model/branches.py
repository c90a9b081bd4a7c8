"""Per-branch scores: what the visual branch and the audio branch of a model each say about the candidates.

The paper's model scores a video twice before fusing (eq. 3-4): the visual branch ``p_v = softmax(f_v(c_v) .
f_w(w) / tau)`` and the audio branch ``p_a = softmax(f_a(c_a) . f_w(w) / tau)``, each a distribution over the C
candidates; eq. 6 mixes them into ``p``. The frozen CLIP/CLAP scorer has the same two parts: the cosine of the CLIP
image embedding with the CLIP text of each class, and of the CLAP audio embedding with the CLAP text. Methods whose
score has no such split (AVCA, CJME, the ranking baselines, ...) give ``None``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from avzsl.model.coordinate_generalize import CoordinateGeneralizeMethod
from avzsl.model.networks import CoordinateGeneralize
from avzsl.model.registry import Method
from avzsl.model.zero_shot import ZeroShot

SOFTMAX = "softmax"
"""Branch scores are the distributions p_v and p_a of eq. 3-4 (each row sums to 1 over the candidates)."""
COSINE = "cosine"
"""Branch scores are cosine similarities in [-1, 1] (the CLIP/CLAP zero-shot scorer)."""


@dataclass
class BranchScores:
    """The two branch scores of N samples against C candidates.

    Attributes:
        visual: ``(N, C)`` float32, the visual branch ("what it saw").
        audio: ``(N, C)`` float32, the audio branch ("what it heard").
        kind: :data:`SOFTMAX` or :data:`COSINE`.
    """

    visual: torch.Tensor
    audio: torch.Tensor
    kind: str


def has_branches(model: CoordinateGeneralize | Method) -> bool:
    """Whether :func:`branch_scores` gives scores for this model (else it returns ``None``)."""
    return isinstance(model, CoordinateGeneralize | CoordinateGeneralizeMethod | ZeroShot)


def branch_scores(model: CoordinateGeneralize | Method, audio: torch.Tensor, visual: torch.Tensor,
                  class_emb: torch.Tensor, batch_size: int = 1024) -> BranchScores | None:
    """The visual and audio branch scores of audio ``(N, D_A)`` and visual ``(N, D_V)`` features against class
    embeddings ``(C, D_W)``, in eval mode without gradients (the model's mode is restored); ``None`` for a method
    without two branches.
    """
    if not has_branches(model):
        return None
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            parts = [_branches(model, audio[i:i + batch_size], visual[i:i + batch_size], class_emb)
                     for i in range(0, audio.shape[0], batch_size)]
    finally:
        model.train(was_training)
    kind = COSINE if isinstance(model, ZeroShot) else SOFTMAX
    if not parts:
        empty = audio.new_zeros((0, class_emb.shape[0]))
        return BranchScores(empty, empty.clone(), kind)
    return BranchScores(torch.cat([v for v, _ in parts]), torch.cat([a for _, a in parts]), kind)


def _branches(model: CoordinateGeneralize | Method, audio: torch.Tensor, visual: torch.Tensor,
              class_emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(visual, audio) branch scores of one chunk, each ``(B, C)``."""
    if isinstance(model, ZeroShot):
        clip_text = F.normalize(class_emb[:, model.clip_slice].float(), dim=-1)
        clap_text = F.normalize(class_emb[:, model.clap_slice].float(), dim=-1)
        return (F.normalize(visual.float(), dim=-1) @ clip_text.T, F.normalize(audio.float(), dim=-1) @ clap_text.T)
    net = model.net if isinstance(model, CoordinateGeneralizeMethod) else model
    out = net(audio, visual, class_emb)
    return out.p_v, out.p_a

