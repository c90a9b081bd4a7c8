"""The training configuration: everything that determines a run's result, hashed to guard run directories.

A run directory stores it in ``config.json`` as ``{"hash": result_hash(), "config": to_dict()}``
(:func:`write_run_config`, :func:`read_run_config`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from avzsl.model.calibration import CALIBRATION_MODES
from avzsl.model.coordinate_generalize import options_from_model_and_loss
from avzsl.model.registry import DEFAULT_METHOD, get_method, list_methods, method_options, options_to_dict
from avzsl.pipeline.core.atomic import atomic_write_text
from avzsl.pipeline.core.errors import InvalidValueError
from avzsl.pipeline.core.safe_read import read_json_file
from avzsl.pipeline.run.layout import CONFIG_JSON, RunConfigError

# Per-benchmark mask proportion rho chosen in the paper (section 5.3, Fig. 2).
PAPER_MASK_RATIO = {"ucf": 0.1, "activitynet": 0.1, "vggsound": 0.2}

_LEGACY_KEYS = ("model", "loss", "standardize_features")


@dataclass
class TrainConfig:
    """Training settings of one run.

    Attributes:
        cache: feature cache directory.
        splits: split folder in the reference format (``stage_*.txt`` + ``stage_*.csv``), or None with ``benchmark``.
        benchmark: built-in benchmark name (ucf, activitynet, vggsound) when ``splits`` is None.
        split_variant: ``main`` or ``cls`` (built-in benchmarks only).
        seed: random seed for initialisation and sampling (the reference uses 42).
        epochs: stage-1 epochs; stage 2 trains for the best stage-1 epoch e*. Methods registered
            ``trainable=False`` always use 1 (nothing is optimised); closed-form methods (ridge, ESZSL) one per
            setting of their regulariser grid (``Method.fit_settings``).
        batches_per_epoch: class-balanced batches per epoch; None means ceil(N_train / batch_size)
            (the reference protocol uses a fixed 500 for UCF).
        batch_size: samples per batch (paper: 256).
        lr: learning rate given to the method's optimiser (paper: Adam, 1e-3).
        eval_batch_size: batch size for scoring.
        method: registered method name (``avzsl-train --list-methods``).
        method_options: the method's options, always stored complete (defaults filled in at construction, so a
            later change of a default can never silently change a stored run's meaning).
        calibration: how gamma is chosen on stage-1 validation: ``exact`` (true optimum), ``reference``
            (AVCA's ``linspace(0, 3, 16)``) or ``legacy`` (avzsl's former [0, 1] grid on plain scores).
        patience: stage 1 stops once validation H has not improved for this many epochs (None: all ``epochs``);
            e* is still the best epoch seen and stage 2 still trains e* epochs.
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
    method: str = DEFAULT_METHOD
    method_options: dict[str, Any] = field(default_factory=dict)
    calibration: str = "exact"
    patience: int | None = None

    def __post_init__(self) -> None:
        if (self.splits is None) == (self.benchmark is None):
            raise InvalidValueError(
                "give exactly one of splits (a split folder) or benchmark (ucf, activitynet, vggsound)"
            )
        if self.split_variant not in ("main", "cls"):
            raise InvalidValueError(f"split_variant must be 'main' or 'cls', not {self.split_variant!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise InvalidValueError("epochs and batch_size must be >= 1 and lr > 0")
        if self.patience is not None and self.patience < 1:
            raise InvalidValueError("patience must be >= 1 epoch")
        if self.batches_per_epoch is not None and self.batches_per_epoch < 1:
            raise InvalidValueError("batches_per_epoch must be >= 1")
        if self.calibration not in CALIBRATION_MODES:
            raise InvalidValueError(f"calibration must be one of {CALIBRATION_MODES}, not {self.calibration!r}")
        try:
            options = method_options(self.method, self.method_options)
        except (KeyError, ValueError) as exc:  # unknown method or option, a model option out of range
            raise InvalidValueError(exc.args[0]) from None
        self.method_options = options_to_dict(options)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`; also reads the former format (``model``/``loss``/``standardize_features``
        of the paper's network, no ``method``), mapped to ``coordinate_generalize`` options with ``legacy``
        calibration so an old run is re-evaluated exactly as it was."""
        data = dict(data)
        if any(k in data for k in _LEGACY_KEYS) and "method" not in data:
            data["method"] = "coordinate_generalize"
            data["method_options"] = options_from_model_and_loss(
                data.pop("model", {}), data.pop("loss", {}), bool(data.pop("standardize_features", False)))
            data.setdefault("calibration", "legacy")
        # Options added after the run was stored: the value it ran with, not today's default.
        method = data.get("method", DEFAULT_METHOD)
        if isinstance(data.get("method_options"), dict) and method in list_methods():
            data["method_options"] = {**get_method(method).cls.hash_neutral_options, **data["method_options"]}
        return cls(**data)

    def result_hash(self) -> str:
        """Hash of every setting that changes the numbers (the cache path itself is excluded: caches move)."""
        payload = self.to_dict()
        payload.pop("cache")
        payload.pop("eval_batch_size")
        # Settings added later, at the value that gives the former numbers, leave the hash as it was.
        if payload.get("patience") is None:
            payload.pop("patience", None)
        options = payload["method_options"]
        for key, neutral in get_method(self.method).cls.hash_neutral_options.items():
            if key in options and options[key] == neutral:
                del options[key]
        text = json.dumps(payload, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def config_differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """``"key: old -> new"`` for every setting that differs between two ``to_dict()`` payloads (nested keys
    joined with dots); ``cache`` and ``eval_batch_size`` are ignored like in the hash."""
    out = []
    for key in sorted(set(old) | set(new)):
        if not prefix and key in ("cache", "eval_batch_size"):
            continue
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def read_run_config_record(run_dir: Path) -> dict[str, Any]:
    """``RUN/config.json`` as written: ``{"hash": ..., "config": {...}}``.

    Raises:
        RunConfigError: no such file (not a run directory), or not a JSON object with a ``config`` object; the
            message names the file.
    """
    path = Path(run_dir) / CONFIG_JSON
    if not path.exists():
        raise RunConfigError(f"{run_dir}: not an avzsl run directory (no {CONFIG_JSON})")
    try:
        record = read_json_file(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunConfigError(f"{path}: not a readable run configuration ({exc})") from exc
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise RunConfigError(f"{path}: not a run configuration (no 'config' object)")
    return record


def read_run_config(run_dir: Path) -> TrainConfig:
    """The configuration stored in a run directory.

    Raises:
        RunConfigError: the file is missing, unreadable, or holds an invalid setting (a batch size of -5, an
            unknown key or method); the message names ``RUN/config.json`` and the setting.
    """
    record = read_run_config_record(run_dir)
    try:
        return TrainConfig.from_dict(record["config"])
    except (TypeError, ValueError, KeyError) as exc:
        raise RunConfigError(f"{Path(run_dir) / CONFIG_JSON}: invalid run configuration: {exc}") from exc


def write_run_config(run_dir: Path, cfg: TrainConfig) -> None:
    """Write ``RUN/config.json`` (atomically): the configuration and its :meth:`TrainConfig.result_hash`."""
    payload = {"hash": cfg.result_hash(), "config": cfg.to_dict()}
    atomic_write_text(Path(run_dir) / CONFIG_JSON, json.dumps(payload, indent=2, sort_keys=True) + "\n")
