"""The two-stage training protocol (avgzsl_conventions.md §5), resumable from per-epoch checkpoints.

Stage 1 trains on ``stage_1_train`` and evaluates every epoch on stage-1 validation (seen + unseen classes); the
epoch with the best harmonic mean H (e*) and its calibration gamma* are kept. Stage 2 retrains from scratch on
``stage_2_train`` for e* epochs; the final model is saved for evaluation on the test split with gamma*. A closed-form
method (:meth:`~avzsl.model.registry.Method.fit_settings` > 0) takes no steps: its epoch ``i + 1`` is the fit of
regulariser setting ``i``, and stage 2 fits setting ``e* - 1`` only.

A stage writes its checkpoint (``last.pt``) and epoch history (``epochs.jsonl``) into its stage directory; the
run directory's layout is :mod:`avzsl.pipeline.run.layout`.

Every file is written atomically; a run killed at any point and restarted with the same command continues from its
last complete checkpoint and ends with the same numbers as an uninterrupted run (same seed, CPU).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from avzsl.model.calibration import choose_calibration
from avzsl.model.metrics import gzsl_metrics
from avzsl.model.registry import FeatureDims, Method, build_method, get_method
from avzsl.model.scoring import method_scores
from avzsl.pipeline.core.atomic import atomic_write_text
from avzsl.pipeline.core.faults import crash_point
from avzsl.pipeline.core.progress import progress_bar
from avzsl.pipeline.run.checkpoint import load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from avzsl.pipeline.run.config import TrainConfig
from avzsl.pipeline.run.layout import EPOCHS_JSONL, LAST_CHECKPOINT
from avzsl.pipeline.train.label_bridge import attach_cache_bridge
from avzsl.pipeline.train.stage_data import PartData

_logger = logging.getLogger(__name__)

FEW_STEPS = 5
"""Below this many optimizer steps per epoch the log says so (per-epoch validation then selects among very short
optimisation lengths; see --batches-per-epoch)."""


def class_balanced_batch(
    labels: torch.Tensor, num_classes: int, batch_size: int, generator: torch.Generator
) -> torch.Tensor:
    """Indices of one class-balanced batch: classes uniform with replacement, then a uniform member of each.

    Args:
        labels: ``(N,)`` int64 class index of every training sample (CPU).
        num_classes: number of training classes ``C``; classes without samples are never drawn.
        batch_size: ``B``.
        generator: the sampler's random generator (its state is checkpointed).

    Returns:
        ``(B,)`` int64 sample indices.
    """
    order = torch.argsort(labels, stable=True)
    counts = torch.bincount(labels, minlength=num_classes)
    offsets = torch.cumsum(counts, 0) - counts
    present = torch.nonzero(counts, as_tuple=False).squeeze(1)
    picked = present[torch.randint(len(present), (batch_size,), generator=generator)]
    within = (torch.rand(batch_size, generator=generator) * counts[picked]).long()
    return order[offsets[picked] + within]


def batches_per_epoch(cfg: TrainConfig, num_train: int) -> int:
    """The configured number of batches, or one pass worth of batches over ``num_train`` samples.

    The protocol passes the stage-1 training size for both stages, so that stage 2's "epoch e*" is the same number
    of optimizer steps as the stage-1 epoch it was selected at (the reference uses a fixed count in both stages).
    """
    return cfg.batches_per_epoch or max(1, math.ceil(num_train / cfg.batch_size))


def build_model(cfg: TrainConfig, seed: int, dims: FeatureDims) -> Method:
    """A freshly initialised method of ``cfg.method`` with ``cfg.method_options``; the seed fixes the weights."""
    torch.manual_seed(seed)
    method = build_method(cfg.method, dims, cfg.method_options)
    if getattr(method, "needs_label_bridge", False):  # ConSE: the encoder's labelled head, from the cache's record
        attach_cache_bridge(method, Path(cfg.cache))
    return method


def part_dims(part: PartData) -> FeatureDims:
    """The input sizes of a protocol part (features and class embeddings)."""
    return FeatureDims(int(part.audio.shape[1]), int(part.visual.shape[1]), int(part.class_emb.shape[1]))


@dataclass
class EvalResult:
    """Metrics at one evaluation: calibration gamma and S/U/H/ZSL as fractions, plus the search summary."""

    gamma: float
    metrics: dict[str, Any]
    calibration: dict[str, Any] | None = None


def part_scores(model: Method, part: PartData, batch_size: int, calibration: str) -> torch.Tensor:
    """The (N, C) scores calibrated stacking shifts under ``calibration``: the method's plain ``scores`` for
    ``legacy`` (the former behaviour), its ``calibration_scores`` otherwise."""
    return method_scores(model, part.feature_batch(), part.class_emb, batch_size,
                         calibration=calibration != "legacy")


def evaluate_part(model: Method, part: PartData, batch_size: int, gamma: float | None,
                  calibration: str = "exact") -> EvalResult:
    """Score ``part`` and compute GZSL metrics; gamma is searched on this part when ``gamma`` is None
    (only ever for validation) with the ``calibration`` mode."""
    scores = part_scores(model, part, batch_size, calibration)
    if gamma is None:
        chosen = choose_calibration(scores, part.labels, part.seen, calibration)
        return EvalResult(chosen.gamma, chosen.metrics.to_dict(), chosen.to_dict())
    return EvalResult(float(gamma), gzsl_metrics(scores, part.labels, part.seen, gamma).to_dict())


def _val_text(record: dict[str, Any]) -> str:
    if "val" not in record:
        return ""
    v = record["val"]
    return (
        f" | val S {v['S'] * 100:.2f} U {v['U'] * 100:.2f} H {v['H'] * 100:.2f} ZSL {v['ZSL'] * 100:.2f}"
        f" gamma {record['gamma']:.4g}"
    )


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


class StageTrainer:
    """Trains one stage for a number of epochs, checkpointing after every epoch.

    Args:
        cfg: run configuration.
        stage: 1 or 2.
        train: training part (labels index the seen classes ``train.classes``).
        stage_dir: where ``last.pt`` and ``epochs.jsonl`` live.
        device: compute device.
        steps_per_epoch: class-balanced batches per epoch.
        val: validation part, evaluated after every epoch (stage 1 only).
    """

    def __init__(
        self,
        cfg: TrainConfig,
        stage: int,
        train: PartData,
        stage_dir: Path,
        device: torch.device,
        steps_per_epoch: int,
        val: PartData | None = None,
    ) -> None:
        self.cfg = cfg
        self.stage = stage
        self.train = train.to(device)
        self.train_labels_cpu = train.labels.cpu()
        self.val = val.to(device) if val is not None else None
        self.dir = Path(stage_dir)
        self.device = device
        self.trainable = get_method(cfg.method).trainable
        self.model = build_model(cfg, cfg.seed, part_dims(train)).to(device)
        # A closed-form method is fitted once per grid setting (Method.fit): no optimiser and no batches.
        self.closed_form = self.trainable and self.model.fit_settings() > 0
        self.steps = steps_per_epoch if self.trainable and not self.closed_form else 0
        self.model.prepare(self.train.feature_batch(), self.train.labels, self.train.class_emb)
        self.optimizer = (self.model.configure_optimizer(cfg.lr) if self.trainable and not self.closed_form
                          else None)
        self.generator = torch.Generator().manual_seed(cfg.seed)
        self.epoch = 0
        self.history: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None

    def stage1_epochs(self, configured: int) -> int:
        """Stage-1 epochs: ``configured``; 1 for a method without training; the grid size of a closed-form one."""
        if self.closed_form:
            return self.model.fit_settings()
        return configured if self.trainable else 1

    @property
    def checkpoint_path(self) -> Path:
        return self.dir / LAST_CHECKPOINT

    def resume(self) -> bool:
        """Load ``last.pt`` when present; returns whether training resumed from it."""
        if not self.checkpoint_path.is_file():
            return False
        state = load_checkpoint(self.checkpoint_path)
        self.model.load_state_dict(state["model"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state["optimizer"])
        self.model.load_extra_state(state.get("method_state", {}))
        restore_rng_state(self.generator, state["rng"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.best = state.get("best")
        _logger.info("stage %d: resumed from %s after epoch %d", self.stage, self.checkpoint_path, self.epoch)
        return True

    def _save(self) -> None:
        save_checkpoint(
            self.checkpoint_path,
            {
                "stage": self.stage,
                "epoch": self.epoch,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict() if self.optimizer is not None else None,
                "method_state": self.model.extra_state_for_checkpoint(),
                "rng": rng_state(self.generator),
                "history": self.history,
                "best": self.best,
                "config_hash": self.cfg.result_hash(),
            },
        )
        # The checkpoint is the source of truth; the JSON-lines file mirrors its history.
        _write_jsonl(self.dir / EPOCHS_JSONL, self.history)

    def train_epoch(self, progress: tqdm | None) -> dict[str, float]:
        """One epoch of class-balanced batches; returns the mean loss and the mean of each named term."""
        self.model.train()
        sums: dict[str, float] = {"loss": 0.0}
        num_classes = len(self.train.classes)
        for _ in range(self.steps):
            index = class_balanced_batch(self.train_labels_cpu, num_classes, self.cfg.batch_size, self.generator)
            index = index.to(self.device)
            out = self.model.training_loss(self.train.feature_batch(index), self.train.labels[index],
                                           self.train.class_emb)
            self.optimizer.zero_grad(set_to_none=True)
            out.total.backward()
            self.optimizer.step()
            sums["loss"] += out.total.item()
            for name, value in out.terms.items():
                sums[name] = sums.get(name, 0.0) + float(value.detach())
            if progress is not None:
                progress.update(1)
        return {k: v / max(self.steps, 1) for k, v in sums.items()}

    def _patience_spent(self) -> bool:
        """Stage 1 with ``patience``: validation H has not improved for that many epochs (the best stays e*)."""
        patience = self.cfg.patience
        if self.stage != 1 or patience is None or self.best is None or self.val is None or self.closed_form:
            return False
        if self.epoch - int(self.best["epoch"]) < patience:
            return False
        _logger.info("stage 1: validation H has not improved for %d epochs (best epoch %d); stopping at epoch %d "
                     "(--patience)", patience, self.best["epoch"], self.epoch)
        return True

    def run(self, epochs: int) -> None:
        """Train until ``epochs`` epochs are done (continuing from a resumed epoch)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.epoch >= epochs:
            return
        if self.closed_form and self.val is None:
            # Every setting is fitted from scratch, so without validation only the last one is needed.
            self.epoch = max(self.epoch, epochs - 1)
        # Said once per run: stage 2 trains with stage 1's steps per epoch, so it would only repeat the numbers.
        if self.trainable and not self.closed_form and self.steps < FEW_STEPS and self.epoch == 0 and self.stage == 1:
            _logger.warning(
                "only %d optimizer step(s) per epoch (%d training videos / batch size %d, in both stages): the "
                "best epoch is chosen among very few optimizer steps; pass --batches-per-epoch N (e.g. 50) for "
                "more steps per epoch", self.steps, len(self.train), self.cfg.batch_size)
        if self.closed_form and self.epoch == 0 and self.stage == 1:
            _logger.info("%s is fitted in closed form: stage 1 fits the %d settings of its regulariser grid, one "
                         "per epoch (--epochs does not apply)", self.cfg.method, epochs)
        total = (epochs - self.epoch) * self.steps
        with progress_bar(total, f"stage {self.stage}", "step", leave=False) as progress:
            while self.epoch < epochs and not self._patience_spent():
                started = time.perf_counter()
                losses = self.model.fit(self.epoch) if self.closed_form else self.train_epoch(progress)
                self.epoch += 1
                record: dict[str, Any] = {"stage": self.stage, "epoch": self.epoch, **losses}
                val_metrics = None
                if self.val is not None:
                    result = evaluate_part(self.model, self.val, self.cfg.eval_batch_size, gamma=None,
                                           calibration=self.cfg.calibration)
                    val_metrics = record["val"] = {k: result.metrics[k] for k in ("S", "U", "H", "ZSL")}
                    record["gamma"] = result.gamma
                    record["calibration"] = result.calibration
                    if self.best is None or result.metrics["H"] > self.best["H"]:
                        self.best = {"epoch": self.epoch, "gamma": result.gamma, **record["val"],
                                     "calibration": result.calibration}
                if self.optimizer is not None:
                    self.model.epoch_end(self.optimizer, self.epoch, val_metrics)
                record["seconds"] = round(time.perf_counter() - started, 4)
                self.history.append(record)
                self._save()
                crash_point(f"stage{self.stage}-epoch-{self.epoch}")
                _logger.info(
                    "stage %d epoch %d/%d loss %.4f%s",
                    self.stage,
                    self.epoch,
                    epochs,
                    losses["loss"],
                    _val_text(record),
                )
