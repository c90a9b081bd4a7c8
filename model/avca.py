"""AVCA (Mercea et al., "Audio-visual Generalised Zero-shot Learning with Cross-modal Attention and Language",
CVPR 2022) as a registered method.

Follows the reference implementation ``ExplainableML/AVCA-GZSL``:

- architecture and losses: ``src/model_improvements.py`` (classes ``AVCA``, ``EmbeddingNet``, ``Transformer``);
- optimiser and schedule: Adam with ``weight_decay=1e-5`` over every sub-network (``AVCA.optimizer_gen``) and
  ``ReduceLROnPlateau('max', patience=3)`` stepped with validation H after every epoch (``src/train.py``);
- scoring: ``src/utils.py`` ``evaluate_dataset_baseline`` with ``new_model_attention=True``: only the VIDEO-branch
  output ``theta_v`` (which has attended to audio) is compared with the projected class embeddings ``theta_w`` by
  L2 distance; the score here is the negated distance;
- defaults: ``run_scripts/UCF-GZSL/avca.sh`` (main features): hidden sizes 512, dropouts 0.2 / 0.3 / 0.5,
  transformer depth 1, both extra triplet pairs and the regression loss on, BatchNorm momentum 0.1, lr 1e-3.
  The protocol-level settings of that script (50 epochs of 500 class-balanced batches of 256) are TrainConfig
  settings, not method options.

Reference oddities and what is done here (docs/baselines.md has the full list):

- ``pos_emb1D`` (the two modality position embeddings) is created as a parameter but left out of the optimiser,
  so it stays at its random initialisation. Followed (``train_pos_emb=False``); ``True`` trains it.
- The reconstructions ``se_em_hat1/2 = A_proj(A_rec(theta_a)), V_proj(V_rec(theta_v))`` are computed in training
  mode and never used: their only effect is on the BatchNorm running statistics of ``A_proj`` / ``V_proj``, which
  ARE used at test time. Followed (``reference_bn_side_effects=True``).
- After every optimiser step the reference's ``train_step`` calls ``model.get_embeddings`` on the batch while still in
  training mode (its outputs are unused): one more BatchNorm running-statistics update of A_enc, V_enc, W_proj,
  A_proj and V_proj per step. Opt-in here (``reference_embedding_pass=True``; run inside :meth:`training_loss`,
  i.e. with the weights before that step's update, as no method hook runs after the step);
  docs/reproduce.md "AVCA parity" measures both.
- Negatives are sampled from the batch instead of the whole training set (see
  :func:`~avzsl.model.baseline_common.in_batch_negatives`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from avzsl.model.baseline_common import PlateauScheduleMixin, in_batch_negatives, mlp_block, negated_l2
from avzsl.model.registry import FeatureBatch, FeatureDims, LossTerms, Method, register_method


@dataclass(frozen=True)
class AVCAOptions:
    """AVCA hyper-parameters; defaults are the reference's UCF main-feature run script."""

    encoder_hidden: int = 512
    """``--embeddings_hidden_size``: hidden width of the audio/visual encoders A_enc, V_enc."""
    decoder_hidden: int = 512
    """``--decoder_hidden_size``: hidden width of the projections A_proj, V_proj."""
    joint_dim: int = 300
    """Width of the encoder outputs / attention tokens (300 in the reference, the word-embedding size)."""
    dim_out: int = 64
    """Size of the common embedding space theta (``params_model['dim_out']``)."""
    encoder_dropout: float = 0.2
    """``--embedding_dropout`` (also the attention's dropout)."""
    projection_dropout: float = 0.3
    """``--decoder_dropout`` in A_proj, V_proj."""
    additional_dropout: float = 0.5
    """``--additional_dropout`` in W_proj, D, A_rec, V_rec."""
    depth: int = 1
    """``--depth_transformer``."""
    heads: int = 3
    head_dim: int = 100
    mlp_dim: int = 64
    bn_momentum: float = 0.1
    """``--momentum``: BatchNorm momentum of the encoder/projection output layers (0.1 main, 0.99 cls features)."""
    margin: float = 1.0
    """Triplet margin (``nn.TripletMarginLoss(margin=1.0)``)."""
    additional_triplets: bool = True
    first_additional_triplet: float = 1.0
    second_additional_triplet: float = 1.0
    reg_loss: bool = True
    weight_decay: float = 1e-5
    lr_patience: int = 3
    lr_factor: float = 0.1
    train_pos_emb: bool = False
    """The reference never optimises its position embeddings; True trains them."""
    reference_bn_side_effects: bool = True
    """Run the reference's unused reconstructions through A_proj/V_proj so their BN statistics match."""
    reference_embedding_pass: bool = False
    """Repeat the reference's unused training-mode ``get_embeddings`` pass per step (BN statistics only)."""
    score_branch: Literal["video", "audio", "both"] = "video"
    """Which output is compared with the classes: the reference uses ``video``; ``both`` sums the two distances."""

    def __post_init__(self) -> None:
        if self.score_branch not in ("video", "audio", "both"):
            raise ValueError(f"score_branch must be video, audio or both, not {self.score_branch!r}")
        if self.depth < 1 or self.heads < 1:
            raise ValueError("depth and heads must be >= 1")


class _CrossAttentionLayer(nn.Module):
    """Pre-norm transformer layer over the two modality tokens: ``(B, 2, D) -> (B, 2, D)``."""

    def __init__(self, dim: int, heads: int, head_dim: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.norm_attn = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * inner, bias=False)
        # As in the reference: the output projection exists unless one head of the model's width is used.
        project = not (heads == 1 and head_dim == dim)
        self.out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout)) if project else nn.Identity()
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_dim, dim),
                                nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.qkv(self.norm_attn(x)).chunk(3, dim=-1)
        q, k, v = (t.reshape(b, n, self.heads, self.head_dim).transpose(1, 2) for t in (q, k, v))  # (B, H, N, d)
        attn = torch.softmax(q @ k.transpose(-1, -2) * self.head_dim ** -0.5, dim=-1)
        x = x + self.out((attn @ v).transpose(1, 2).reshape(b, n, self.heads * self.head_dim))
        return x + self.ff(self.norm_ff(x))


def _two_layer(in_dim: int, hidden: int, out_dim: int, dropout: float, momentum: float) -> nn.Sequential:
    """Reference ``EmbeddingNet`` with a hidden layer: the output BatchNorm uses ``momentum``, the hidden one 0.1."""
    return nn.Sequential(*mlp_block(in_dim, hidden, bn=True, dropout=dropout),
                         *mlp_block(hidden, out_dim, bn=True, dropout=dropout, momentum=momentum))


def _one_layer(in_dim: int, out_dim: int, dropout: float) -> nn.Sequential:
    """Reference ``EmbeddingNet`` without a hidden layer (its BatchNorm ignores ``--momentum``)."""
    return nn.Sequential(*mlp_block(in_dim, out_dim, bn=True, dropout=dropout))


@register_method("avca", description="AVCA (Mercea et al., CVPR 2022): audio-visual cross-attention, triplet and "
                 "reconstruction losses in a text-aligned space, L2-distance scores (ExplainableML/AVCA-GZSL)")
class AVCA(PlateauScheduleMixin, Method):
    """AVCA. Inputs ``(B, D_A)``, ``(B, D_V)``; class embeddings ``(C, D_W)``; scores ``(B, C)``."""

    Options = AVCAOptions

    def __init__(self, dims: FeatureDims, options: AVCAOptions) -> None:
        super().__init__(dims, options)
        o = options
        j = o.joint_dim
        self.A_enc = _two_layer(dims.audio_dim, o.encoder_hidden, j, o.encoder_dropout, o.bn_momentum)
        self.V_enc = _two_layer(dims.visual_dim, o.encoder_hidden, j, o.encoder_dropout, o.bn_momentum)
        self.cross_attention = nn.ModuleList(
            [_CrossAttentionLayer(j, o.heads, o.head_dim, o.mlp_dim, o.encoder_dropout) for _ in range(o.depth)])
        self.W_proj = _one_layer(dims.text_dim, o.dim_out, o.additional_dropout)
        self.D = _one_layer(o.dim_out, dims.text_dim, o.additional_dropout)
        self.A_proj = _two_layer(j, o.decoder_hidden, o.dim_out, o.projection_dropout, o.bn_momentum)
        self.V_proj = _two_layer(j, o.decoder_hidden, o.dim_out, o.projection_dropout, o.bn_momentum)
        self.A_rec = _one_layer(o.dim_out, j, o.additional_dropout)
        self.V_rec = _one_layer(o.dim_out, j, o.additional_dropout)
        self.pos_emb = nn.Parameter(torch.randn(2, j), requires_grad=o.train_pos_emb)

    # -- shared forward pieces ------------------------------------------------------------------------------------
    def _attend(self, phi_a: torch.Tensor, phi_v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Residual cross-modal attention: ``(B, J), (B, J) -> (B, J), (B, J)``."""
        x = torch.stack((phi_a + self.pos_emb[0], phi_v + self.pos_emb[1]), dim=1)  # (B, 2, J)
        for layer in self.cross_attention:
            x = layer(x)
        return phi_a + x[:, 0], phi_v + x[:, 1]

    def _embed(self, audio: torch.Tensor, visual: torch.Tensor) -> dict[str, torch.Tensor]:
        phi_a, phi_v = self.A_enc(audio), self.V_enc(visual)
        att_a, att_v = self._attend(phi_a, phi_v)
        return {"phi_a": phi_a, "phi_v": phi_v, "theta_a": self.A_proj(att_a), "theta_v": self.V_proj(att_v)}

    # -- training -------------------------------------------------------------------------------------------------
    def configure_optimizer(self, lr: float) -> torch.optim.Optimizer:
        """Adam(lr, weight_decay) over the sub-networks (and the position embeddings only if ``train_pos_emb``)."""
        params = [p for p in self.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(params, lr=lr, weight_decay=self.options.weight_decay)
        self._attach_scheduler(optimizer, self.options.lr_patience, self.options.lr_factor)
        return optimizer

    def training_loss(self, batch: FeatureBatch, labels: torch.Tensor, class_emb: torch.Tensor) -> LossTerms:
        o = self.options
        neg = in_batch_negatives(labels)
        w, w_neg = class_emb[labels], class_emb[labels[neg]]  # (B, D_W) each
        pos = self._embed(batch.audio, batch.visual)
        negs = self._embed(batch.audio[neg], batch.visual[neg])
        theta_w, theta_w_neg = self.W_proj(w), self.W_proj(w_neg)
        theta_a, theta_v = pos["theta_a"], pos["theta_v"]
        # Each sub-network is called once per tensor, as in the reference, so BatchNorm sees the same batches.
        rho_w = self.D(theta_w)
        rho_a, rho_a_neg = self.D(theta_a), self.D(negs["theta_a"])
        rho_v, rho_v_neg = self.D(theta_v), self.D(negs["theta_v"])
        phi_a_rec, phi_v_rec = self.A_rec(theta_a), self.V_rec(theta_v)
        if o.reference_bn_side_effects and self.training:
            self.A_proj(phi_a_rec)
            self.V_proj(phi_v_rec)

        def trip(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
            return F.triplet_margin_loss(anchor, positive, negative, margin=o.margin)

        # Cross-modal decoder: reconstruct the word embedding from every branch, and order the decoded outputs.
        l_rec = F.mse_loss(rho_v, w) + F.mse_loss(rho_a, w) + F.mse_loss(rho_w, w)
        l_ct = trip(rho_w, rho_a, rho_a_neg) + trip(rho_w, rho_v, rho_v_neg)
        # Triplets in the common space, text-anchored and modality-anchored.
        l_w = (trip(theta_w, theta_v, negs["theta_v"]) + trip(theta_w, theta_a, negs["theta_a"])
               + trip(theta_a, theta_w, theta_w_neg) + trip(theta_v, theta_w, theta_w_neg))
        terms = {"l_rec": l_rec, "l_ct": l_ct, "l_w": l_w}
        total = l_rec + l_ct + l_w
        if o.additional_triplets:
            l_t = (o.first_additional_triplet * (trip(theta_a, theta_w, negs["theta_a"])
                                                 + trip(theta_v, theta_w, negs["theta_v"]))
                   + o.second_additional_triplet * (trip(theta_w, theta_a, theta_w_neg)
                                                    + trip(theta_w, theta_v, theta_w_neg)))
            terms["l_t"] = l_t
            total = total + l_t
        if o.reg_loss:
            l_r = (F.mse_loss(phi_v_rec, pos["phi_v"]) + F.mse_loss(phi_a_rec, pos["phi_a"])
                   + F.mse_loss(theta_v, theta_w) + F.mse_loss(theta_a, theta_w))
            terms["l_reg"] = l_r
            total = total + l_r
        if o.reference_embedding_pass and self.training:
            # Reference train_step: get_embeddings(audio, video, text) in training mode after the step; only its
            # BatchNorm running statistics (and dropout draws) have an effect.
            with torch.no_grad():
                self._embed(batch.audio, batch.visual)
                self.W_proj(w)
        return LossTerms(total, {k: v.detach() for k, v in terms.items()})

    # -- inference ------------------------------------------------------------------------------------------------
    def scores(self, batch: FeatureBatch, class_emb: torch.Tensor) -> torch.Tensor:
        """Negated L2 distance of the chosen branch output to ``W_proj(class_emb)``: ``(B, C)``."""
        out = self._embed(batch.audio, batch.visual)
        theta_w = self.W_proj(class_emb)
        branch = self.options.score_branch
        if branch == "video":
            return negated_l2(out["theta_v"], theta_w)
        if branch == "audio":
            return negated_l2(out["theta_a"], theta_w)
        return negated_l2(out["theta_v"], theta_w) + negated_l2(out["theta_a"], theta_w)
