"""TCAF (Mercea et al., "Temporal and Cross-modal Attention for Audio-Visual Zero-Shot Learning", ECCV 2022) as a
registered method on per-window sequences.

Follows ``ExplainableML/TCAF-GZSL``:

- model: ``src/model_sequence.py`` ``Multimodal_Sequence_Transformer``: per-window audio/visual encoders
  (``EmbeddingNet``), ``AudioVisualEmbedding`` (modality embedding + Fourier time embedding + padding embedding,
  concatenated to the features and projected by a 1x1 convolution), a class token, a transformer whose attention is
  CROSS-modal only (``NewAttention`` with ``use_self_attention=False``: audio tokens attend to visual tokens and the
  class token, visual tokens to audio tokens and the class token, the class token to everything), and the
  projections ``O_proj`` / ``D_o`` / ``W_proj`` / ``D_w``;
- loss: ``compute_loss``: cross-entropy of ``theta_o . W_proj(w_c)`` over the training classes, ``MSE(theta_o,
  theta_w)`` and the reconstructions ``MSE(w, D_o(theta_o)) + MSE(w, D_w(theta_w))``;
- scoring: L2 distance between ``theta_o`` and ``W_proj(w_c)`` (``src/utils.py``), negated here;
- defaults: ``config/best/best_main/best_ucf.yaml`` (UCF main features): encoder hidden 256, dropouts
  0.4 / 0.2 / 0.1, transformer 300-d, depth 5, 8 heads of 64, MLP 128, dropout 0.3, embedding 64-d with dropout
  0.2, sinusoid time embedding with Fourier scale 10, Adam lr 5e-5 (a TrainConfig setting) with weight decay 1e-5,
  no learning-rate schedule; batch 64 x 300 batches x 50 epochs are TrainConfig settings.

Reference oddities and what is done here:

- Inputs are preprocessed as ``audio / 255`` and ``F.normalize(visual)`` on a ``(B, T, D)`` tensor, i.e. along the
  TIME axis (dim 1), not the feature axis. Followed (``audio_scale=1/255``, ``visual_normalize="time"``);
  ``visual_normalize="feature"`` or ``"none"`` are the alternatives.
- One LayerNorm per transformer layer is shared by the attention and the feed-forward sub-blocks. Followed.
- Training passes the windows' timestamps to the time embedding, evaluation passes none (window indices are used).
  Here both use the window index (avzsl windows are 1 s, so index = seconds).
- The reference trims training sequences to 60 windows at a random offset (a new crop each time a video is loaded)
  and evaluates whole sequences. Here the protocol keeps the FIRST ``max_windows`` (default 60) windows of every
  video in every part (training, validation and test alike; :meth:`TCAF.sequence_windows`), so that the padded
  ``(N, T, D)`` tensors held in memory stay bounded (T <= 60); ``max_windows=0`` keeps every window (T = the
  longest video of the part). UCF and VGGSound videos (about 10 s at 1 s windows) are not trimmed at all; long
  ActivityNet videos lose their tail and get no random-crop augmentation.

Inputs come from ``avzsl-train --method tcaf`` on a cache with per-window sequences (``avzsl-extract`` without
``--no-sequences``, or ``avzsl-synth --windows N``); the protocol pads each part to its longest kept sequence and
builds the ``(N, T)`` mask (``avzsl.pipeline.train.stage_data.attach_sequences``). A cache without sequences is refused
before training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from avzsl.model.baseline_common import mlp_block, negated_l2
from avzsl.model.registry import FeatureBatch, FeatureDims, LossTerms, Method, register_method


@dataclass(frozen=True)
class TCAFOptions:
    """TCAF hyper-parameters; defaults are the reference's best UCF main-feature configuration."""

    encoder_hidden: int = 256
    encoder_dropout: float = 0.4
    decoder_hidden: int = 512
    decoder_dropout: float = 0.2
    additional_dropout: float = 0.1
    dim: int = 300
    depth: int = 5
    heads: int = 8
    head_dim: int = 64
    mlp_dim: int = 128
    dropout: float = 0.3
    embed_dim: int = 64
    embed_dropout: float = 0.2
    fourier_scale: float = 10.0
    dim_out: int = 64
    use_embedding_net: bool = True
    cross_entropy_loss: bool = True
    reg_loss: bool = True
    rec_loss: bool = True
    weight_decay: float = 1e-5
    audio_scale: float = 1.0 / 255.0
    visual_normalize: Literal["time", "feature", "none"] = "time"
    max_windows: int = 60
    """Windows kept per video (the first ones) when the protocol loads sequences; 0 = all."""

    def __post_init__(self) -> None:
        if self.max_windows < 0:
            raise ValueError(f"max_windows must be >= 0 (0 = keep every window), not {self.max_windows!r}")
        if self.visual_normalize not in ("time", "feature", "none"):
            raise ValueError(f"visual_normalize must be time, feature or none, not {self.visual_normalize!r}")
        if self.embed_dim % 2:
            raise ValueError("embed_dim must be even (sin and cos halves of the Fourier embedding)")


def _embedding_net(in_dim: int, out_dim: int, dropout: float, hidden: int = 0) -> nn.Sequential:
    """Reference ``EmbeddingNet``: ``[Linear BN ReLU Dropout] -> Linear BN ReLU Dropout``."""
    layers = mlp_block(in_dim, hidden, bn=True, dropout=dropout) if hidden > 0 else []
    return nn.Sequential(*layers, *mlp_block(hidden if hidden > 0 else in_dim, out_dim, bn=True, dropout=dropout))


def cross_modal_mask(valid: torch.Tensor) -> torch.Tensor:
    """Attention mask of [cls, audio_1..T, visual_1..T]: ``(B, T) bool -> (B, 1 + 2T, 1 + 2T)`` bool (True = attend).

    Valid tokens only; audio-audio and visual-visual pairs are blocked, as in the reference's cross-attention-only
    ``NewAttention``. The class token attends to (and is attended by) every valid token.
    """
    b, t = valid.shape
    tokens = torch.cat((torch.ones(b, 1, dtype=torch.bool, device=valid.device), valid, valid), dim=1)
    mask = tokens[:, None, :] & tokens[:, :, None]
    mask[:, 1:t + 1, 1:t + 1] = False
    mask[:, t + 1:, t + 1:] = False
    return mask


class _Layer(nn.Module):
    """Transformer layer with one LayerNorm shared by attention and feed-forward: ``(B, N, D) -> (B, N, D)``."""

    def __init__(self, o: TCAFOptions) -> None:
        super().__init__()
        self.heads, self.head_dim = o.heads, o.head_dim
        inner = o.heads * o.head_dim
        self.norm = nn.LayerNorm(o.dim)
        self.to_q = nn.Linear(o.dim, inner, bias=False)
        self.to_k = nn.Linear(o.dim, inner, bias=False)
        self.to_v = nn.Linear(o.dim, inner, bias=False)
        self.to_out = nn.Sequential(nn.Linear(inner, o.dim), nn.Dropout(o.dropout))
        self.ff = nn.Sequential(nn.Linear(o.dim, o.mlp_dim), nn.GELU(), nn.Dropout(o.dropout),
                                nn.Linear(o.mlp_dim, o.dim), nn.Dropout(o.dropout))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        h = self.norm(x)
        q, k, v = (f(h).reshape(b, n, self.heads, self.head_dim).transpose(1, 2) for f in (self.to_q, self.to_k,
                                                                                          self.to_v))
        dots = q @ k.transpose(-1, -2) * self.head_dim ** -0.5  # (B, H, N, N)
        dots = dots.masked_fill(~mask[:, None], -torch.finfo(dots.dtype).max)
        out = (torch.softmax(dots, dim=-1) @ v).transpose(1, 2).reshape(b, n, -1)
        x = x + self.to_out(out)
        return x + self.ff(self.norm(x))


@register_method("tcaf", needs_sequences=True,
                 description="TCAF (Mercea et al., ECCV 2022): temporal cross-modal attention over per-second audio "
                 "and visual features, class token, L2 scores (ExplainableML/TCAF-GZSL); needs per-window sequences")
class TCAF(Method):
    """TCAF. Inputs ``batch.audio_seq (B, T, D_A)``, ``batch.visual_seq (B, T, D_V)``, ``batch.seq_mask (B, T)``;
    class embeddings ``(C, D_W)``; scores ``(B, C)``."""

    Options = TCAFOptions

    def __init__(self, dims: FeatureDims, options: TCAFOptions) -> None:
        super().__init__(dims, options)
        o = options
        feat_a, feat_v = dims.audio_dim, dims.visual_dim
        if o.use_embedding_net:
            self.A_enc = _embedding_net(dims.audio_dim, o.dim, o.encoder_dropout, o.encoder_hidden)
            self.V_enc = _embedding_net(dims.visual_dim, o.dim, o.encoder_dropout, o.encoder_hidden)
            feat_a = feat_v = o.dim
        self.modal_embedding = nn.Embedding(2, o.embed_dim)
        self.register_buffer("fourier_randn", o.fourier_scale * torch.randn(2, o.embed_dim // 2))
        self.fourier = nn.Linear(o.embed_dim, o.embed_dim)
        self.pad_embedding = nn.Embedding(1, o.embed_dim)
        self.proj_a = nn.Linear(feat_a + o.embed_dim, o.dim)  # the reference's Conv1d(kernel_size=1)
        self.proj_v = nn.Linear(feat_v + o.embed_dim, o.dim)
        self.embed_dropout = nn.Dropout(o.embed_dropout)
        self.cls_token = nn.Parameter(torch.randn(1, 1, o.dim))
        self.layers = nn.ModuleList([_Layer(o) for _ in range(o.depth)])
        self.O_proj = _embedding_net(o.dim, o.dim_out, o.decoder_dropout, o.decoder_hidden)
        self.D_o = _embedding_net(o.dim_out, dims.text_dim, o.decoder_dropout, o.decoder_hidden)
        self.W_proj = _embedding_net(dims.text_dim, o.dim_out, o.additional_dropout)
        self.D_w = _embedding_net(o.dim_out, dims.text_dim, o.additional_dropout)

    @classmethod
    def sequence_windows(cls, options: TCAFOptions) -> int | None:
        """The first ``options.max_windows`` windows of every video (None = all when it is 0)."""
        return options.max_windows or None

    def configure_optimizer(self, lr: float) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=lr, weight_decay=self.options.weight_decay)

    def _time_embedding(self, t: int, device: torch.device) -> torch.Tensor:
        """Fourier features of window indices ``0..T-1``: ``(T, E)``."""
        pos = torch.arange(t, device=device, dtype=torch.float32)[:, None].repeat(1, 2)  # (T, 2)
        proj = (2.0 * math.pi * pos) @ self.fourier_randn
        return self.fourier(torch.cat((torch.sin(proj), torch.cos(proj)), dim=-1))

    def _tokens(self, x: torch.Tensor, valid: torch.Tensor, modality: int, time: torch.Tensor,
                enc: nn.Module | None, proj: nn.Module) -> torch.Tensor:
        b, t, _ = x.shape
        if enc is not None:  # per window, padded windows included, as in the reference
            x = enc(x.reshape(b * t, -1)).reshape(b, t, -1)
        emb = self.modal_embedding.weight[modality] + time[None].expand(b, -1, -1)
        emb = emb + (~valid)[..., None].to(emb.dtype) * self.pad_embedding.weight[0]
        return self.embed_dropout(proj(torch.cat((x, emb), dim=-1)))

    def embed(self, batch: FeatureBatch) -> torch.Tensor:
        """``theta_o``, the class-token output projected to the common space: ``(B, dim_out)``."""
        if batch.audio_seq is None or batch.visual_seq is None or batch.seq_mask is None:
            raise ValueError("TCAF needs per-window sequences (batch.audio_seq, visual_seq, seq_mask); extract the "
                             "cache without --no-sequences, or write one with avzsl-synth --windows N")
        o = self.options
        valid = batch.seq_mask.bool()
        a = batch.audio_seq * o.audio_scale
        v = batch.visual_seq
        if o.visual_normalize == "time":
            v = F.normalize(v, dim=1)
        elif o.visual_normalize == "feature":
            v = F.normalize(v, dim=2)
        time = self._time_embedding(a.shape[1], a.device)
        enc_a = self.A_enc if o.use_embedding_net else None
        enc_v = self.V_enc if o.use_embedding_net else None
        x = torch.cat((self.cls_token.expand(a.shape[0], -1, -1),
                       self._tokens(a, valid, 0, time, enc_a, self.proj_a),
                       self._tokens(v, valid, 1, time, enc_v, self.proj_v)), dim=1)
        mask = cross_modal_mask(valid)
        for layer in self.layers:
            x = layer(x, mask)
        return self.O_proj(x[:, 0])

    def training_loss(self, batch: FeatureBatch, labels: torch.Tensor, class_emb: torch.Tensor) -> LossTerms:
        o = self.options
        theta_o = self.embed(batch)
        w = class_emb[labels]
        theta_w = self.W_proj(w)
        zero = theta_o.new_zeros(())
        terms: dict[str, torch.Tensor] = {}
        terms["ce"] = F.cross_entropy(theta_o @ self.W_proj(class_emb).t(), labels) if o.cross_entropy_loss else zero
        terms["reg"] = F.mse_loss(theta_o, theta_w) if o.reg_loss else zero
        if o.rec_loss:
            terms["rec"] = F.mse_loss(self.D_o(theta_o), w) + F.mse_loss(self.D_w(theta_w), w)
        else:
            terms["rec"] = zero
        total = terms["ce"] + terms["reg"] + terms["rec"]
        return LossTerms(total, {k: v.detach() for k, v in terms.items()})

    def scores(self, batch: FeatureBatch, class_emb: torch.Tensor) -> torch.Tensor:
        """``-||theta_o - W_proj(w_c)||``: ``(B, C)``."""
        return negated_l2(self.embed(batch), self.W_proj(class_emb))
