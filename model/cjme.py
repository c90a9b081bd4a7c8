"""CJME (Parida et al., "Coordinated Joint Multimodal Embeddings for Generalized Audio-Visual Zero-shot
Classification and Retrieval of Videos", WACV 2020) as in the AVCA-GZSL benchmark.

Follows ``ExplainableML/AVCA-GZSL``:

- model: ``src/model.py`` ``CJME`` / ``EmbeddingNetCJME``: audio, visual and text MLPs (hidden 1024, BatchNorm,
  ReLU, dropout 0.2, output 64 followed by ReLU) and a modality-attention unit ``sigmoid(Linear(BN([a; v])))``;
- loss: ``src/loss.py`` ``CJMELoss`` (margin 1, L2): attention-weighted text-anchored triplets
  ``(1 - w) T(t, a+, a-) + w T(t, v+, v-)``, ``MSE(a, v)``, and an MSE that supervises ``w`` with a target from the
  entropies of the audio and visual class posteriors against the (detached) projected class embeddings
  (1: audio more uncertain -> trust video, 0: the reverse, 0.5 when they differ by at most ``epsilon`` = 0.1);
- scoring: ``src/utils.py`` ``get_best_evaluation(mode="both")`` with the hard attention ``[w >= 0.5]``:
  distance ``(1 - w_hard) d(a, t_c) + w_hard d(v, t_c)``, negated here;
- defaults: ``run_scripts/UCF-GZSL/cjme.sh`` (lr 1e-3, dropout 0.2, BN on) and ``src/args.py`` (hidden 1024,
  margin 1); Adam with ``ReduceLROnPlateau('max', patience=3)`` on validation H (``main.py``).

Reference oddity: the attention weights ``w`` are ``(B, 1)`` and the triplet losses ``(B,)``, so the reference's
``(1 - w) * l_ta`` broadcasts to ``(B, B)`` and its mean is ``mean(1 - w) * mean(l_ta)``: each sample's weight scales
the batch-mean loss, not its own. Followed (``per_sample_weighting=False``); True weights each sample's own terms.
The class projections for the entropy target are computed in training mode (BatchNorm over the class batch,
dropout), as the reference does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from avzsl.model.baseline_common import PlateauScheduleMixin, in_batch_negatives, mlp_block
from avzsl.model.registry import FeatureBatch, FeatureDims, LossTerms, Method, register_method


@dataclass(frozen=True)
class CJMEOptions:
    """CJME hyper-parameters; defaults are the reference's UCF main-feature settings."""

    hidden: int = 1024
    """``--embeddings_hidden_size`` (reference default; the run script does not set it)."""
    text_hidden: int = 300
    embed_dim: int = 64
    dropout: float = 0.2
    use_bn: bool = True
    margin: float = 1.0
    epsilon: float = 0.1
    """Entropy difference below which the attention target is 0.5."""
    per_sample_weighting: bool = False
    lr_patience: int = 3
    lr_factor: float = 0.1


def _branch(in_dim: int, hidden: int, out_dim: int, o: CJMEOptions) -> nn.Sequential:
    return nn.Sequential(*mlp_block(in_dim, hidden, bn=o.use_bn, dropout=o.dropout),
                         *mlp_block(hidden, out_dim, bn=False, dropout=0.0))


def attention_target(ent_audio: torch.Tensor, ent_video: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Supervision of the attention weight: ``(B,), (B,) -> (B,)`` in {0, 0.5, 1} (1 = use video)."""
    target = torch.ones_like(ent_audio)
    target[ent_video - ent_audio - epsilon > 0] = 0.0
    target[(ent_video - ent_audio).abs() <= epsilon] = 0.5
    return target


def weighted_triplets(w: torch.Tensor, l_ta: torch.Tensor, l_tv: torch.Tensor, per_sample: bool) -> torch.Tensor:
    """Attention-weighted triplet loss: ``(B, 1), (B,), (B,) -> ()``.

    ``per_sample=False`` is the reference's ``((1 - w) * l_ta + w * l_tv).mean()`` whose ``(B, 1) * (B,)`` broadcast
    makes it ``mean(1 - w) * mean(l_ta) + mean(w) * mean(l_tv)`` (computed in that form, without the ``(B, B)``
    matrix); ``per_sample=True`` weights each sample's own terms.
    """
    if per_sample:
        return ((1 - w[:, 0]) * l_ta + w[:, 0] * l_tv).mean()
    return (1 - w).mean() * l_ta.mean() + w.mean() * l_tv.mean()


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    p = torch.softmax(logits, dim=1)
    return -(p * torch.log(p.clamp_min(torch.finfo(p.dtype).tiny))).sum(dim=1)


@register_method("cjme", description="CJME (Parida et al., WACV 2020): coordinated audio/visual/text embeddings "
                 "with a supervised modality attention, triplet losses, L2 scores (as in ExplainableML/AVCA-GZSL)")
class CJME(PlateauScheduleMixin, Method):
    """CJME. Inputs ``(B, D_A)``, ``(B, D_V)``; class embeddings ``(C, D_W)``; scores ``(B, C)``."""

    Options = CJMEOptions

    def __init__(self, dims: FeatureDims, options: CJMEOptions) -> None:
        super().__init__(dims, options)
        o = options
        self.f_a = _branch(dims.audio_dim, o.hidden, o.embed_dim, o)
        self.f_v = _branch(dims.visual_dim, o.hidden, o.embed_dim, o)
        self.f_t = _branch(dims.text_dim, o.text_hidden, o.embed_dim, o)
        self.attention = nn.Sequential(nn.BatchNorm1d(dims.audio_dim + dims.visual_dim),
                                       nn.Linear(dims.audio_dim + dims.visual_dim, 1), nn.Sigmoid())

    def configure_optimizer(self, lr: float) -> torch.optim.Optimizer:
        optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        self._attach_scheduler(optimizer, self.options.lr_patience, self.options.lr_factor)
        return optimizer

    def training_loss(self, batch: FeatureBatch, labels: torch.Tensor, class_emb: torch.Tensor) -> LossTerms:
        o = self.options
        neg = in_batch_negatives(labels)
        a, v = self.f_a(batch.audio), self.f_v(batch.visual)
        a_neg, v_neg = self.f_a(batch.audio[neg]), self.f_v(batch.visual[neg])
        t = self.f_t(class_emb[labels])
        w = self.attention(torch.cat((batch.audio, batch.visual), dim=1))  # (B, 1)
        classes = self.f_t(class_emb).detach()  # (C, E), training mode as in the reference
        target = attention_target(_entropy(a.detach() @ classes.t()), _entropy(v.detach() @ classes.t()), o.epsilon)
        l_att = F.mse_loss(w, target[:, None])
        l_ta = F.triplet_margin_loss(t, a, a_neg, margin=o.margin, reduction="none")  # (B,)
        l_tv = F.triplet_margin_loss(t, v, v_neg, margin=o.margin, reduction="none")
        l_ct = weighted_triplets(w, l_ta, l_tv, o.per_sample_weighting)
        l_av = F.mse_loss(a, v)
        total = l_ct + l_av + l_att
        return LossTerms(total, {"ct": l_ct.detach(), "av": l_av.detach(), "att": l_att.detach()})

    def scores(self, batch: FeatureBatch, class_emb: torch.Tensor) -> torch.Tensor:
        """``-((1 - w_hard) d(a, t_c) + w_hard d(v, t_c))``: ``(B, C)``."""
        a, v, t = self.f_a(batch.audio), self.f_v(batch.visual), self.f_t(class_emb)
        w = (self.attention(torch.cat((batch.audio, batch.visual), dim=1)) >= 0.5).to(a.dtype)  # (B, 1)
        return -((1 - w) * torch.cdist(a, t) + w * torch.cdist(v, t))
