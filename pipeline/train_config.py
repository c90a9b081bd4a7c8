"""The training configuration: everything that determines a run's result, hashed to guard run directories."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from avzsl.model.config import LossConfig, ModelConfig

# Per-benchmark mask proportion rho chosen in the paper (section 5.3, Fig. 2).
PAPER_MASK_RATIO = {"ucf": 0.1, "activitynet": 0.1, "vggsound": 0.2}


@dataclass
class TrainConfig:
    """Training settings of one run.

    Attributes:
        cache: feature cache directory.
        splits: split folder in the reference format (``stage_*.txt`` + ``stage_*.csv``), or None with ``benchmark``.
        benchmark: built-in benchmark name (ucf, activitynet, vggsound) when ``splits`` is None.
        split_variant: ``main`` or ``cls`` (built-in benchmarks only).
        seed: random seed for initialisation and sampling (the reference uses 42).
        epochs: stage-1 epochs; stage 2 trains for the best stage-1 epoch e*.
        batches_per_epoch: class-balanced batches per epoch; None means ceil(N_train / batch_size)
            (the reference protocol uses a fixed 500 for UCF).
        batch_size: samples per batch (paper: 256).
        lr: Adam learning rate (paper: 1e-3).
        eval_batch_size: batch size for scoring.
        standardize_features: standardize input features per dimension with training-set statistics (not in the
            paper; off by default; helps features with a large common offset, e.g. random encoder weights).
        model: network sizes (text_dim and feature dims are filled from the cache).
        loss: loss variant and coefficients.
    """

    cache: str
    splits: str | None = None
    benchmark: str | None = None
    split_variant: str = "main"
    seed: int = 42
    epochs: int = 50
    batches_per_epoch: int | None = None
    batch_size: int = 256
    lr: float = 1e-3
    eval_batch_size: int = 2048
    standardize_features: bool = False
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        if (self.splits is None) == (self.benchmark is None):
            raise ValueError("give exactly one of splits (a split folder) or benchmark (ucf, activitynet, vggsound)")
        if self.split_variant not in ("main", "cls"):
            raise ValueError(f"split_variant must be 'main' or 'cls', not {self.split_variant!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError("epochs and batch_size must be >= 1 and lr > 0")
        if self.batches_per_epoch is not None and self.batches_per_epoch < 1:
            raise ValueError("batches_per_epoch must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["model"] = self.model.to_dict()
        out["loss"] = self.loss.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        data["model"] = ModelConfig.from_dict(data.get("model", {}))
        data["loss"] = LossConfig.from_dict(data.get("loss", {}))
        return cls(**data)

    def result_hash(self) -> str:
        """Hash of every setting that changes the numbers (the cache path itself is excluded: caches move)."""
        payload = self.to_dict()
        payload.pop("cache")
        payload.pop("eval_batch_size")
        text = json.dumps(payload, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]
