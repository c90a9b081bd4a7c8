"""SJE (Akata et al., CVPR 2015) as in the AVCA-GZSL benchmark.

Same bilinear model, options and scoring as :mod:`avzsl.model.devise`; the loss is ``ClsContrastiveLoss`` with
``max_violation=True, topk=1`` (``ExplainableML/AVCA-GZSL, src/loss.py``): only the most violating wrong class of
each sample counts. Defaults from ``run_scripts/UCF-GZSL/sje.sh``.
"""

from __future__ import annotations

import torch

from avzsl.model.devise import BilinearRanking
from avzsl.model.registry import register_method


@register_method("sje", description="SJE (Akata et al., CVPR 2015): linear map to word embeddings, hinge on the "
                 "most violating class (as in ExplainableML/AVCA-GZSL)")
class SJE(BilinearRanking):
    """SJE: ``max_j max(0, margin + s_j - s_y)`` averaged over the batch."""

    def ranking_loss(self, costs: torch.Tensor) -> torch.Tensor:
        return costs.max(dim=1).values.sum() / costs.shape[0]
