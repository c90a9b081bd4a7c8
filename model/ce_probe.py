"""A plain cross-entropy probe: the "small two-branch model" of issue 8's comparison table.

Not from a paper: the simplest trainable GZSL baseline that transfers through the class-name embeddings.
Standardized audio and visual inputs each go through a small MLP into the word-embedding space; the two outputs
are summed; the score of class c is the cosine between that sum and the class embedding (optionally after a
learned linear text projection); training is softmax cross-entropy over the seen classes with a fixed temperature.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from avzsl.model.baseline_common import InputStandardizer, mlp_block
from avzsl.model.registry import FeatureBatch, FeatureDims, LossTerms, Method, register_method


@dataclass(frozen=True)
class CEProbeOptions:
    """Options of the cross-entropy probe."""

    hidden: int = 512
    """Hidden width of each branch (0: a linear branch)."""
    dropout: float = 0.3
    temperature: float = 0.1
    """Softmax temperature on cosine scores (logits = cos / temperature)."""
    standardize: bool = True
    """z-score the inputs with training-set statistics (fitted in ``prepare``)."""
    text_projection: bool = False
    """Learn a linear map of the class embeddings (False: compare with the raw embeddings)."""
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("temperature must be > 0")


def _branch(in_dim: int, hidden: int, out_dim: int, dropout: float) -> nn.Sequential:
    if hidden <= 0:
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, out_dim))
    return nn.Sequential(*mlp_block(in_dim, hidden, bn=False, dropout=dropout), nn.Linear(hidden, out_dim))


@register_method("ce_probe", description="Cross-entropy probe: two small branches (audio, visual) into the "
                 "class-embedding space, softmax cross-entropy, cosine scores, standardized inputs")
class CEProbe(Method):
    """Inputs ``(B, D_A)``, ``(B, D_V)``; class embeddings ``(C, D_W)``; scores ``(B, C)`` cosines in [-1, 1]."""

    Options = CEProbeOptions

    def __init__(self, dims: FeatureDims, options: CEProbeOptions) -> None:
        super().__init__(dims, options)
        self.norm_a = InputStandardizer(dims.audio_dim)
        self.norm_v = InputStandardizer(dims.visual_dim)
        self.f_a = _branch(dims.audio_dim, options.hidden, dims.text_dim, options.dropout)
        self.f_v = _branch(dims.visual_dim, options.hidden, dims.text_dim, options.dropout)
        self.text = nn.Linear(dims.text_dim, dims.text_dim) if options.text_projection else nn.Identity()

    def prepare(self, train: FeatureBatch, labels: torch.Tensor, class_emb: torch.Tensor) -> None:
        if self.options.standardize:
            self.norm_a.fit(train.audio)
            self.norm_v.fit(train.visual)

    def configure_optimizer(self, lr: float) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=lr, weight_decay=self.options.weight_decay)

    def _cosines(self, batch: FeatureBatch, class_emb: torch.Tensor) -> torch.Tensor:
        x = self.f_a(self.norm_a(batch.audio)) + self.f_v(self.norm_v(batch.visual))  # (B, D_W)
        return F.normalize(x, dim=1) @ F.normalize(self.text(class_emb), dim=1).t()

    def training_loss(self, batch: FeatureBatch, labels: torch.Tensor, class_emb: torch.Tensor) -> LossTerms:
        loss = F.cross_entropy(self._cosines(batch, class_emb) / self.options.temperature, labels)
        return LossTerms(loss, {"ce": loss.detach()})

    def scores(self, batch: FeatureBatch, class_emb: torch.Tensor) -> torch.Tensor:
        return self._cosines(batch, class_emb)
