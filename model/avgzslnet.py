"""AVGZSLNet (Mazumder et al., "AVGZSLNet: Audio-Visual Generalized Zero-Shot Learning by Reconstructing
Label Features from Multi-Modal Embeddings", WACV 2021) as in the AVCA-GZSL benchmark.

Follows ``ExplainableML/AVCA-GZSL``:

- model: ``src/model.py`` ``AVGZSLNet``: audio, visual and text embedding MLPs to 64-d (hidden 1024 / 300,
  BatchNorm, ReLU, dropout 0.8, no output activation) and one shared cross-modal decoder 64 -> 64 -> 300 with
  L2-normalized outputs;
- loss: ``src/loss.py`` ``AVGZSLLoss`` with margin 1 and the L2 distance: the decoder loss (L2 distance of the
  decoded audio, visual and text embeddings to the class's word embedding, plus text-anchored triplets on the
  decoded outputs) and the composite triplet loss (text-anchored and modality-anchored triplets in the 64-d space);
- scoring: ``src/utils.py`` ``get_best_evaluation(mode="both")``: ``d(a, t_c) + d(v, t_c)`` (negated here);
- defaults: ``run_scripts/UCF-GZSL/avgzslnet.sh`` (lr 1e-3, BN in both nets, normalized decoder outputs) and the
  ``src/args.py`` defaults it inherits (hidden 1024, decoder hidden 64, dropouts 0.8 / 0.5, margin 1); Adam with
  ``ReduceLROnPlateau('max', patience=3)`` on validation H (``main.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from avzsl.model.baseline_common import PlateauScheduleMixin, in_batch_negatives, mlp_block
from avzsl.model.registry import FeatureBatch, FeatureDims, LossTerms, Method, register_method


@dataclass(frozen=True)
class AVGZSLNetOptions:
    """AVGZSLNet hyper-parameters; defaults are the reference's UCF main-feature settings."""

    hidden: int = 1024
    text_hidden: int = 300
    embed_dim: int = 64
    embedding_dropout: float = 0.8
    decoder_hidden: int = 64
    decoder_dropout: float = 0.5
    embedding_bn: bool = True
    decoder_bn: bool = True
    normalize_decoder_outputs: bool = True
    margin: float = 1.0
    lr_patience: int = 3
    lr_factor: float = 0.1


def _net(in_dim: int, hidden: int, out_dim: int, bn: bool, dropout: float) -> nn.Sequential:
    return nn.Sequential(*mlp_block(in_dim, hidden, bn=bn, dropout=dropout),
                         *mlp_block(hidden, out_dim, bn=False, dropout=0.0, relu=False))


def _l2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Row-wise L2 distance (the reference's ``L2Loss``): ``(B, D), (B, D) -> (B,)``."""
    return (x - y).pow(2).sum(1).sqrt()


@register_method("avgzslnet", description="AVGZSLNet (Mazumder et al., WACV 2021): audio/visual/text embeddings with "
                 "a label-reconstructing decoder, triplet losses, L2 scores (as in ExplainableML/AVCA-GZSL)")
class AVGZSLNet(PlateauScheduleMixin, Method):
    """AVGZSLNet. Inputs ``(B, D_A)``, ``(B, D_V)``; class embeddings ``(C, D_W)``; scores ``(B, C)``."""

    Options = AVGZSLNetOptions

    def __init__(self, dims: FeatureDims, options: AVGZSLNetOptions) -> None:
        super().__init__(dims, options)
        o = options
        self.f_a = _net(dims.audio_dim, o.hidden, o.embed_dim, o.embedding_bn, o.embedding_dropout)
        self.f_v = _net(dims.visual_dim, o.hidden, o.embed_dim, o.embedding_bn, o.embedding_dropout)
        self.f_t = _net(dims.text_dim, o.text_hidden, o.embed_dim, o.embedding_bn, o.embedding_dropout)
        self.decoder = _net(o.embed_dim, o.decoder_hidden, dims.text_dim, o.decoder_bn, o.decoder_dropout)

    def configure_optimizer(self, lr: float) -> torch.optim.Optimizer:
        optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        self._attach_scheduler(optimizer, self.options.lr_patience, self.options.lr_factor)
        return optimizer

    def _decode(self, x: torch.Tensor) -> torch.Tensor:
        out = self.decoder(x)
        return F.normalize(out, dim=1) if self.options.normalize_decoder_outputs else out

    def training_loss(self, batch: FeatureBatch, labels: torch.Tensor, class_emb: torch.Tensor) -> LossTerms:
        o = self.options
        neg = in_batch_negatives(labels)
        x_t, x_t_neg = class_emb[labels], class_emb[labels[neg]]
        a, v, t = self.f_a(batch.audio), self.f_v(batch.visual), self.f_t(x_t)
        a_neg, v_neg, t_neg = self.f_a(batch.audio[neg]), self.f_v(batch.visual[neg]), self.f_t(x_t_neg)
        dec_a, dec_v, dec_t = self._decode(a), self._decode(v), self._decode(t)
        dec_a_neg, dec_v_neg = self._decode(a_neg), self._decode(v_neg)

        def trip(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
            return F.triplet_margin_loss(anchor, positive, negative, margin=o.margin)

        l_rec = _l2(dec_t, x_t).mean() + _l2(dec_a, x_t).mean() + _l2(dec_v, x_t).mean()
        l_cmd = l_rec + trip(dec_t, dec_a, dec_a_neg) + trip(dec_t, dec_v, dec_v_neg)
        l_ct = trip(t, a, a_neg) + trip(a, t, t_neg) + trip(t, v, v_neg) + trip(v, t, t_neg)
        return LossTerms(l_cmd + l_ct, {"cmd": l_cmd.detach(), "ct": l_ct.detach()})

    def scores(self, batch: FeatureBatch, class_emb: torch.Tensor) -> torch.Tensor:
        """``-(d(a, t_c) + d(v, t_c))``: ``(B, C)``."""
        a, v, t = self.f_a(batch.audio), self.f_v(batch.visual), self.f_t(class_emb)
        return -(torch.cdist(a, t) + torch.cdist(v, t))
