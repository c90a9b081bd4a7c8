"""DeViSE (Frome et al., NeurIPS 2013) as in the AVCA-GZSL benchmark, and the bilinear ranking base ALE and SJE share.

Follows ``ExplainableML/AVCA-GZSL``:

- model: ``src/model.py`` ``DeviseModel``: one bias-free linear map of the concatenated ``[visual, audio]`` features
  to the word-embedding space, dropout on the inputs and on the class embeddings, compatibility = dot product;
- losses: ``src/loss.py`` ``ClsContrastiveLoss`` with margin 0.1: DeViSE ``reduction="sum"`` (hinge summed over
  all wrong classes), ALE ``"weighted"`` (rank-weighted), SJE ``max_violation=True, topk=1`` (hardest wrong class);
- scoring: ``src/utils.py`` ``evaluate_dataset_baseline(model_devise=True)`` ranks classes by the L2 DISTANCE
  between the projected features and the class embeddings, although training ranks by dot product. Followed
  (``score="distance"``, negated so higher is better); ``score="dot"`` uses the training compatibility instead;
- defaults: ``run_scripts/UCF-GZSL/{devise,ale,sje}.sh`` (main features): dropout 0.2, lr 1e-3, no input
  normalization, Adam with ``ReduceLROnPlateau('max', patience=3)`` on validation H (``main.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from avzsl.model.baseline_common import PlateauScheduleMixin, negated_l2
from avzsl.model.registry import FeatureBatch, FeatureDims, LossTerms, Method, register_method


@dataclass(frozen=True)
class RankingOptions:
    """Options of the bilinear ranking baselines (DeViSE, ALE, SJE)."""

    dropout: float = 0.2
    """``--dropout_baselines``: dropout on the input features and on the class embeddings (training only)."""
    margin: float = 0.1
    """Hinge margin of ``ClsContrastiveLoss``."""
    norm_inputs: bool = False
    """``--norm_inputs``: L2-normalize the concatenated features (the reference uses it for cls features only)."""
    score: Literal["distance", "dot"] = "distance"
    """Test-time ranking: the reference's L2 distance, or the dot product the loss trains."""
    lr_patience: int = 3
    lr_factor: float = 0.1

    def __post_init__(self) -> None:
        if self.score not in ("distance", "dot"):
            raise ValueError(f"score must be 'distance' or 'dot', not {self.score!r}")


def hinge_costs(compat: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """``max(0, margin + s_j - s_y)`` for every wrong class j, 0 at the true class: ``(B, C) -> (B, C)``."""
    pos = compat.gather(1, labels[:, None])
    cost = (margin + compat - pos).clamp(min=0)
    return cost.masked_fill(F.one_hot(labels, compat.shape[1]).bool(), 0.0)


class BilinearRanking(PlateauScheduleMixin, Method):
    """Shared model of DeViSE / ALE / SJE: ``W [v; a]`` in the text space; subclasses define :meth:`ranking_loss`."""

    Options = RankingOptions

    def __init__(self, dims: FeatureDims, options: RankingOptions) -> None:
        super().__init__(dims, options)
        self.bilinear = nn.Linear(dims.visual_dim + dims.audio_dim, dims.text_dim, bias=False)
        self.dropout = nn.Dropout(options.dropout)

    def configure_optimizer(self, lr: float) -> torch.optim.Optimizer:
        optimizer = torch.optim.Adam(self.parameters(), lr=lr)
        self._attach_scheduler(optimizer, self.options.lr_patience, self.options.lr_factor)
        return optimizer

    def project(self, batch: FeatureBatch) -> torch.Tensor:
        """``(B, D_V + D_A) -> (B, D_W)``; the reference concatenates video first."""
        x = torch.cat((batch.visual, batch.audio), dim=1)
        if self.options.norm_inputs:
            x = F.normalize(x, dim=1)
        return self.bilinear(self.dropout(x))

    def ranking_loss(self, costs: torch.Tensor) -> torch.Tensor:
        """Reduce the ``(B, C)`` hinge costs to the batch loss."""
        raise NotImplementedError

    def training_loss(self, batch: FeatureBatch, labels: torch.Tensor, class_emb: torch.Tensor) -> LossTerms:
        compat = self.project(batch) @ self.dropout(class_emb).t()  # (B, C)
        loss = self.ranking_loss(hinge_costs(compat, labels, self.options.margin))
        return LossTerms(loss, {"rank": loss.detach()})

    def scores(self, batch: FeatureBatch, class_emb: torch.Tensor) -> torch.Tensor:
        proj = self.project(batch)
        if self.options.score == "dot":
            return proj @ class_emb.t()
        return negated_l2(proj, class_emb)


@register_method("devise", description="DeViSE (Frome et al., NeurIPS 2013): linear map to word embeddings, hinge "
                 "ranking summed over wrong classes (as in ExplainableML/AVCA-GZSL)")
class DeViSE(BilinearRanking):
    """DeViSE: ``sum_j max(0, margin + s_j - s_y)`` averaged over the batch."""

    def ranking_loss(self, costs: torch.Tensor) -> torch.Tensor:
        return costs.sum() / costs.shape[0]
