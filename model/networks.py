"""The "Coordinate and Generalize" network (paper section 4, eq. 1-4 and 6).

Data flow for a batch of B videos and C candidate classes::

    v (B, D_V) --psi_V--> m_v (B, D_V)      a (B, D_A) --psi_A--> m_a (B, D_A)          eq. 1
    c_v, c_a = ATT((v * m_v) || (a * m_a))   each (B, att_dim)                           eq. 2
    logits_v = f_v(c_v) . f_w(w)^T / tau     (B, C);  p_v = softmax(logits_v)            eq. 3
    logits_a = f_a(c_a) . f_w(w)^T / tau     (B, C);  p_a = softmax(logits_a)            eq. 4
    p = beta p_v + (1 - beta) p_a            (B, C)                                      eq. 6
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from avzsl.model.config import ModelConfig


class MaskGenerator(nn.Module):
    """psi_V / psi_A of eq. 1: Linear-ReLU-Linear-Sigmoid, one mask value in (0, 1) per feature element."""

    def __init__(self, in_dim: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, in_dim), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map features (B, in_dim) to a soft mask (B, in_dim)."""
        return self.net(x)


class AttentionFusion(nn.Module):
    """ATT of eq. 2: a Transformer encoder layer over two tokens, one per modality.

    The concatenation (v * m_v) || (a * m_a) is read as a sequence of two tokens: each modality is projected to
    a token of size att_dim, and multi-head self-attention lets each token attend to both. The first output token
    is c_v, the second c_a. (Attention over the 1024-d concatenation as a single token would be degenerate: the
    softmax over one key is 1, so the block would collapse to an MLP and could not produce two outputs.)
    Post-norm layout as in Vaswani et al.: x = LN(x + MHA(x)); x = LN(x + FF(x)).
    """

    def __init__(self, visual_dim: int, audio_dim: int, att_dim: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.proj_v = nn.Linear(visual_dim, att_dim)
        self.proj_a = nn.Linear(audio_dim, att_dim)
        self.attn = nn.MultiheadAttention(att_dim, heads, dropout=dropout, batch_first=True)
        self.drop1 = nn.Dropout(dropout)
        self.norm1 = nn.LayerNorm(att_dim)
        self.ff = nn.Sequential(nn.Linear(att_dim, ff), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ff, att_dim))
        self.drop2 = nn.Dropout(dropout)
        self.norm2 = nn.LayerNorm(att_dim)

    def forward(self, visual: torch.Tensor, audio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fuse masked visual (B, D_V) and audio (B, D_A) features into (c_v, c_a), each (B, att_dim)."""
        # The separate input projections already tell the tokens apart, so no modality embedding is added.
        x = torch.stack((self.proj_v(visual), self.proj_a(audio)), dim=1)  # (B, 2, att_dim)
        attended, _ = self.attn(x, x, x, need_weights=False)
        x = self.norm1(x + self.drop1(attended))
        x = self.norm2(x + self.drop2(self.ff(x)))
        return x[:, 0], x[:, 1]


class EmbeddingMLP(nn.Module):
    """f_v / f_a / f_w of eq. 3-4: Linear-ReLU-Linear into the common space."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (N, in_dim) to (N, out_dim)."""
        return self.net(x)


class TextProjection(nn.Module):
    """f_w in the ``text_form`` of :class:`ModelConfig`: class-name embeddings (C, D_W) -> (C, embed_dim).

    "mlp": the paper's Linear-ReLU-Linear (:class:`EmbeddingMLP`, the same parameter names under ``f_w.net``);
    "residual": a linear map plus the same two-layer MLP whose output layer starts at zero, so f_w starts linear and
    the MLP learns a correction (less room to bend the text space away from the unseen classes at the start);
    "linear": one linear layer. ``dropout`` acts on the MLP's hidden units (training only).
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int, form: str = "mlp", dropout: float = 0.0) -> None:
        super().__init__()
        self.form = form
        if form == "linear":
            self.skip = nn.Linear(in_dim, out_dim)
            return
        self.net = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim))
        if form == "residual":
            self.skip = nn.Linear(in_dim, out_dim)
            nn.init.zeros_(self.net[3].weight)
            nn.init.zeros_(self.net[3].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map (C, in_dim) to (C, out_dim)."""
        if self.form == "linear":
            return self.skip(x)
        out = self.net(x)
        return out + self.skip(x) if self.form == "residual" else out


def similarity_logits(emb: torch.Tensor, class_embed: torch.Tensor, tau: float | torch.Tensor,
                      similarity: str = "dot") -> torch.Tensor:
    """Logits of eq. 3/4 of sample embeddings (B, E) and class embeddings (C, E) -> (B, C).

    "dot": ``emb . class_embed / tau`` (the paper's form); "cosine": the same on L2-normalised rows, so logits lie
    in [-1/tau, 1/tau].
    """
    if similarity == "cosine":
        emb = nn.functional.normalize(emb, dim=1)
        class_embed = nn.functional.normalize(class_embed, dim=1)
    return emb @ class_embed.t() / tau


def fuse_scores(p_v: torch.Tensor, p_a: torch.Tensor, beta: float) -> torch.Tensor:
    """Eq. 6: convex combination beta p_v + (1 - beta) p_a of two (B, C) score distributions."""
    return beta * p_v + (1.0 - beta) * p_a


def fused_log_scores(logits_v: torch.Tensor, logits_a: torch.Tensor, beta: float) -> torch.Tensor:
    """log p of eq. 6 computed in log space from the (B, C) logits: exact where p underflows in float32.

    ``log(beta softmax(l_v) + (1 - beta) softmax(l_a))`` via logsumexp; a zero weight drops its branch.
    """
    terms = []
    if beta > 0.0:
        terms.append(logits_v.log_softmax(dim=1) + math.log(beta))
    if beta < 1.0:
        terms.append(logits_a.log_softmax(dim=1) + math.log(1.0 - beta))
    return torch.logsumexp(torch.stack(terms), dim=0)


@dataclass
class ModelOutput:
    """Everything one forward pass produces (B samples, C classes)."""

    logits_v: torch.Tensor
    """(B, C) visual logits f_v(c_v) . f_w(w) / tau."""
    logits_a: torch.Tensor
    """(B, C) audio logits f_a(c_a) . f_w(w) / tau."""
    p_v: torch.Tensor
    """(B, C) softmax(logits_v), eq. 3."""
    p_a: torch.Tensor
    """(B, C) softmax(logits_a), eq. 4."""
    p: torch.Tensor
    """(B, C) final similarity score, eq. 6."""
    mask_v: torch.Tensor
    """(B, D_V) soft visual mask m_v, eq. 1."""
    mask_a: torch.Tensor
    """(B, D_A) soft audio mask m_a, eq. 1."""
    c_v: torch.Tensor
    """(B, att_dim) learned visual feature, eq. 2."""
    c_a: torch.Tensor
    """(B, att_dim) learned audio feature, eq. 2."""
    emb_v: torch.Tensor
    """(B, embed_dim) f_v(c_v)."""
    emb_a: torch.Tensor
    """(B, embed_dim) f_a(c_a)."""
    class_embed: torch.Tensor
    """(C, embed_dim) f_w(w)."""
    visual_in: torch.Tensor | None = None
    """(B, D_V) the visual features v the mask is applied to (after the optional standardization)."""
    audio_in: torch.Tensor | None = None
    """(B, D_A) the audio features a the mask is applied to (after the optional standardization)."""


class CoordinateGeneralize(nn.Module):
    """The full model: mask generators, ATT, embedding networks and the two-branch scores (eq. 1-4, 6)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.mask_v = MaskGenerator(config.visual_dim, config.mask_hidden)
        self.mask_a = MaskGenerator(config.audio_dim, config.mask_hidden)
        self.att = AttentionFusion(config.visual_dim, config.audio_dim, config.att_dim, config.att_heads,
                                   config.att_ff, config.dropout)
        self.f_v = EmbeddingMLP(config.att_dim, config.embed_hidden, config.embed_dim)
        self.f_a = EmbeddingMLP(config.att_dim, config.embed_hidden, config.embed_dim)
        if config.text_form == "mlp" and not config.text_dropout:  # the paper's f_w; the state-dict keys of before
            self.f_w: nn.Module = EmbeddingMLP(config.text_dim, config.embed_hidden, config.embed_dim)
        else:
            self.f_w = TextProjection(config.text_dim, config.embed_hidden, config.embed_dim, config.text_form,
                                      config.text_dropout)
        # Optional per-dimension standardization of the input features (identity unless set from training data
        # with set_feature_standardization). Buffers, so checkpoints carry them to evaluation and prediction.
        self.register_buffer("visual_shift", torch.zeros(config.visual_dim))
        self.register_buffer("visual_scale", torch.ones(config.visual_dim))
        self.register_buffer("audio_shift", torch.zeros(config.audio_dim))
        self.register_buffer("audio_scale", torch.ones(config.audio_dim))
        # Learned log of 1/tau (only when configured, so state dicts of fixed-tau models keep their keys).
        if config.learn_temperature:
            self.log_inv_tau = nn.Parameter(torch.tensor(-float(torch.log(torch.tensor(config.tau)))))

    @property
    def temperature(self) -> float | torch.Tensor:
        """tau of eq. 3/4: the configured constant, or the learned value (a 0-d tensor with grad)."""
        if self.config.learn_temperature:
            return torch.exp(-self.log_inv_tau)
        return self.config.tau

    @torch.no_grad()
    def set_feature_standardization(self, audio: torch.Tensor, visual: torch.Tensor, eps: float = 1e-6) -> None:
        """Standardize inputs per dimension with the mean and std of training features audio (N, D_A), visual
        (N, D_V). Not part of the paper (off by default): useful when features have a large common offset, such as
        randomly initialised encoders."""
        self.audio_shift.copy_(audio.mean(0))
        self.audio_scale.copy_(audio.std(0).clamp_min(eps))
        self.visual_shift.copy_(visual.mean(0))
        self.visual_scale.copy_(visual.std(0).clamp_min(eps))

    def standardize(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(audio, visual) after the per-dimension standardization (identity by default)."""
        return (audio - self.audio_shift) / self.audio_scale, (visual - self.visual_shift) / self.visual_scale

    def embed_classes(self, class_emb: torch.Tensor) -> torch.Tensor:
        """f_w: class-name embeddings (C, D_W) -> (C, embed_dim). Compute once per evaluation."""
        if class_emb.dim() != 2 or class_emb.shape[1] != self.config.text_dim:
            raise ValueError(f"class_emb must be (C, {self.config.text_dim}) (ModelConfig.text_dim), "
                             f"got {tuple(class_emb.shape)}")
        return self.f_w(class_emb)

    def _fused(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Eq. 1-2 on already standardized features: returns (m_v (B, D_V), m_a (B, D_A), c_v, c_a (B, att_dim))."""
        m_v = self.mask_v(visual)
        m_a = self.mask_a(audio)
        c_v, c_a = self.att(visual * m_v, audio * m_a)
        return m_v, m_a, c_v, c_a

    def learned_features(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Learned features (c_a, c_v), each (B, att_dim), of audio (B, D_A) and visual (B, D_V) inputs.

        Runs in the module's current mode and with the caller's grad setting (wrap in ``torch.no_grad()`` and
        call ``eval()`` for t-SNE plots).
        """
        _, _, c_v, c_a = self._fused(*self.standardize(audio, visual))
        return c_a, c_v

    def forward_embedded(self, audio: torch.Tensor, visual: torch.Tensor, class_embed: torch.Tensor) -> ModelOutput:
        """Forward pass with class embeddings already mapped by :meth:`embed_classes`.

        Args:
            audio: (B, D_A) audio features a.
            visual: (B, D_V) visual features v.
            class_embed: (C, embed_dim) f_w(w) of the candidate classes.
        """
        audio, visual = self.standardize(audio, visual)
        m_v, m_a, c_v, c_a = self._fused(audio, visual)
        emb_v = self.f_v(c_v)
        emb_a = self.f_a(c_a)
        tau = self.temperature
        logits_v = similarity_logits(emb_v, class_embed, tau, self.config.similarity)
        logits_a = similarity_logits(emb_a, class_embed, tau, self.config.similarity)
        p_v = logits_v.softmax(dim=1)
        p_a = logits_a.softmax(dim=1)
        p = fuse_scores(p_v, p_a, self.config.branch_beta)
        return ModelOutput(logits_v=logits_v, logits_a=logits_a, p_v=p_v, p_a=p_a, p=p, mask_v=m_v, mask_a=m_a,
                           c_v=c_v, c_a=c_a, emb_v=emb_v, emb_a=emb_a, class_embed=class_embed,
                           visual_in=visual, audio_in=audio)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor, class_emb: torch.Tensor) -> ModelOutput:
        """Full forward pass.

        Args:
            audio: (B, D_A) audio features a.
            visual: (B, D_V) visual features v.
            class_emb: (C, D_W) class-name embeddings w of the candidate classes (training: the seen classes).
        """
        return self.forward_embedded(audio, visual, self.embed_classes(class_emb))
