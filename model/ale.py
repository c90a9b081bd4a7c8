"""ALE (Akata et al., CVPR 2013 / TPAMI 2016) as in the AVCA-GZSL benchmark.

Same bilinear model, options and scoring as :mod:`avzsl.model.devise`; the loss is ``ClsContrastiveLoss`` with
``reduction="weighted"`` (``ExplainableML/AVCA-GZSL, src/loss.py``): every hinge cost of a sample is weighted by
``beta_r / r`` where ``r`` is the number of violating classes of that sample and ``beta_r = sum_{k=1..r} 1/k``
(the WARP-style rank weighting of ALE). Defaults from ``run_scripts/UCF-GZSL/ale.sh``.
"""

from __future__ import annotations

import torch

from avzsl.model.devise import BilinearRanking
from avzsl.model.registry import register_method


def rank_weights(costs: torch.Tensor) -> torch.Tensor:
    """``beta_r / r`` per row with ``r`` = number of positive costs: ``(B, C) -> (B, 1)`` (0 when ``r = 0``)."""
    r = (costs > 0).sum(dim=1, keepdim=True)  # (B, 1)
    max_r = int(r.max()) if r.numel() else 0
    harmonic = torch.zeros(max_r + 1, dtype=costs.dtype, device=costs.device)
    if max_r:
        harmonic[1:] = torch.cumsum(1.0 / torch.arange(1, max_r + 1, dtype=costs.dtype, device=costs.device), 0)
    # The reference divides by (r + 1e-8); for r = 0 all costs are 0 anyway.
    return harmonic[r] / (r.to(costs.dtype) + 1e-8)


@register_method("ale", description="ALE (Akata et al., CVPR 2013): linear map to word embeddings, rank-weighted "
                 "hinge ranking (as in ExplainableML/AVCA-GZSL)")
class ALE(BilinearRanking):
    """ALE: rank-weighted hinge costs summed per sample, averaged over the batch."""

    def ranking_loss(self, costs: torch.Tensor) -> torch.Tensor:
        return (costs * rank_weights(costs)).sum() / costs.shape[0]
