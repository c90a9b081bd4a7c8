"""Helpers shared by the Table 2 baselines (AVCA, CJME, AVGZSLNet, DeViSE, ALE, SJE, TCAF, ce_probe).

Everything here is pure tensor code: input standardization fitted once on the training part, in-batch negative
sampling for the triplet losses, L2-distance scores (negated, so that higher is better like every registered method)
and the ``ReduceLROnPlateau`` schedule on validation H that the AVCA reference code uses for all its baselines
(``ExplainableML/AVCA-GZSL, main.py`` and ``src/train.py``: ``ReduceLROnPlateau(optimizer, 'max', patience=3)``
stepped with the validation harmonic mean after every epoch).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

_logger = logging.getLogger(__name__)


class InputStandardizer(nn.Module):
    """Per-dimension z-scoring with statistics of the training part; identity until :meth:`fit` is called.

    The statistics are buffers, so they travel in the checkpoint's ``state_dict``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, x: torch.Tensor) -> None:
        """Fit on ``(N, D)`` (or ``(N, T, D)`` with a ``(N, T)`` mask already applied by the caller)."""
        flat = x.reshape(-1, x.shape[-1]).float()
        self.mean.copy_(flat.mean(dim=0))
        # A constant dimension would divide by zero; leave it unscaled.
        self.std.copy_(flat.std(dim=0).clamp_min(1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., D) -> (..., D)``."""
        return (x - self.mean) / self.std


def in_batch_negatives(labels: torch.Tensor) -> torch.Tensor:
    """For each sample, the index of a uniformly drawn batch member of ANOTHER class.

    The reference (``ExplainableML/AVCA-GZSL, src/dataset.py``, ``ContrastiveDataset.__getitem__``) draws the negative
    class uniformly among the other training classes and then a sample of it uniformly. Inside a class-balanced batch
    every class is equally likely, so a uniform other-class batch member has the same distribution up to the batch's
    composition. A batch with a single class has no negative; then the sample itself is returned (its triplet terms
    are then exactly the margin, a constant without gradient on the distance difference).

    Args:
        labels: ``(B,)`` long class indices.

    Returns:
        ``(B,)`` long indices into the batch. Uses torch's global RNG (checkpointed by the trainer).
    """
    different = labels[:, None] != labels[None, :]  # (B, B)
    has_negative = different.any(dim=1)
    weights = different.float()
    weights[~has_negative] = 1.0  # any row is valid for multinomial; replaced below
    picked = torch.multinomial(weights, 1).squeeze(1)
    own = torch.arange(labels.shape[0], device=labels.device)
    return torch.where(has_negative, picked, own)


def negated_l2(x: torch.Tensor, class_emb: torch.Tensor) -> torch.Tensor:
    """Higher-is-better scores ``-||x_i - e_c||_2``: ``(N, D), (C, D) -> (N, C)``.

    ``torch.cdist`` as in the reference's ``get_best_evaluation``; calibration then shifts distances additively, as the
    reference's ``beta`` does.
    """
    return -torch.cdist(x, class_emb)


class PlateauScheduleMixin:
    """Adds the reference's ``ReduceLROnPlateau('max', patience)`` on validation H to a :class:`Method`.

    The host class sets ``self._plateau_patience`` / ``self._plateau_factor`` and builds its optimiser through
    :meth:`_attach_scheduler`. In stage 2 there is no validation split (the protocol passes ``val_metrics=None``);
    the schedule then keeps the learning rate it has (the reference steps it with H on the stage-1 validation
    videos, which stage 2 trains on; see docs/baselines.md).
    """

    _scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
    _pending_scheduler_state: dict[str, Any] | None = None

    def _attach_scheduler(self, optimizer: torch.optim.Optimizer, patience: int, factor: float) -> None:
        self._scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", patience=patience,
                                                                     factor=factor)
        if self._pending_scheduler_state is not None:
            self._scheduler.load_state_dict(self._pending_scheduler_state)
            self._pending_scheduler_state = None

    def epoch_end(self, optimizer: torch.optim.Optimizer, epoch: int, val_metrics: dict[str, float] | None) -> None:
        if self._scheduler is None or not val_metrics or val_metrics.get("H") is None:
            return
        before = [g["lr"] for g in optimizer.param_groups]
        self._scheduler.step(float(val_metrics["H"]))
        after = [g["lr"] for g in optimizer.param_groups]
        if after != before:
            _logger.info("%s: validation H plateaued; learning rate %s -> %s after epoch %d",
                         type(self).__name__, before, after, epoch)

    def extra_state_for_checkpoint(self) -> dict[str, Any]:
        if self._scheduler is None:
            return {}
        return {"scheduler": self._scheduler.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        sched = state.get("scheduler") if state else None
        if sched is None:
            return
        if self._scheduler is not None:
            self._scheduler.load_state_dict(sched)
        else:  # configure_optimizer has not run yet; apply when it does
            self._pending_scheduler_state = dict(sched)


def mlp_block(in_dim: int, out_dim: int, *, bn: bool, dropout: float, relu: bool = True,
              momentum: float = 0.1) -> list[nn.Module]:
    """``Linear -> [BatchNorm1d] -> [ReLU] -> [Dropout]`` as a list of modules (shape ``(B, in) -> (B, out)``)."""
    layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
    if bn:
        layers.append(nn.BatchNorm1d(out_dim, momentum=momentum))
    if relu:
        layers.append(nn.ReLU())
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    return layers

