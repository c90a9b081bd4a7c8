"""Run the whole two-stage protocol in a run directory, and evaluate a finished run.

This module holds the training policy of a run directory (config guard, resume, the stages, evaluation); the
per-epoch work is in :mod:`avzsl.pipeline.train.trainer`, the directory's files and ``model.pt`` in
:mod:`avzsl.pipeline.run`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from avzsl.model.registry import get_method, method_options
from avzsl.pipeline.cache import (
    CacheError,
    cache_has_sequences,
    input_video_ids,
    load_features,
    load_sequences,
    read_cache_info,
    read_class_table,
    sequences_missing_message,
    weights_are_random,
)
from avzsl.pipeline.core.atomic import atomic_write_text
from avzsl.pipeline.core.checksums import (
    IntegrityError,
    read_checked_json,
    read_checked_json_or_none,
    write_checked_json,
)
from avzsl.pipeline.core.safe_read import read_json_file
from avzsl.pipeline.data.splits import Splits
from avzsl.pipeline.run.config import TrainConfig, config_differences, read_run_config, write_run_config
from avzsl.pipeline.run.identity import RunIdentity, check_run_record, input_changes, write_run_identity
from avzsl.pipeline.run.layout import (
    CONFIG_JSON,
    METRICS_JSON,
    MISSING_VIDEOS_CSV,
    MODEL_PT,
    RANDOM_WEIGHTS_WARNING,
    RunConfigError,
    clear_run,
    mark_run_complete,
    read_stage1_result,
    remove_run_temporaries,
    run_status,
    stage1_result_path,
    stage_dir,
    stored_config_hash,
)
from avzsl.pipeline.run.model_file import load_run_model, read_model_record, save_run_model
from avzsl.pipeline.train.run_inputs import (
    align_config_paths,
    changed_inputs,
    current_identity,
    load_run_splits,
    refuse_changed_inputs,
    refuse_evaluation,
)
from avzsl.pipeline.train.stage_data import ProtocolData, attach_sequences, build_protocol_data, write_missing_report
from avzsl.pipeline.train.trainer import StageTrainer, batches_per_epoch, evaluate_part, part_dims

_logger = logging.getLogger(__name__)

__all__ = ["evaluate_run", "load_protocol_data", "load_run_splits", "train_run"]


def load_protocol_data(cfg: TrainConfig, splits: Splits | None = None) -> tuple[ProtocolData, dict[str, Any]]:
    """Load the cache once and assemble the four protocol parts; warns when the cache has random weights.

    The split folder (``splits``, else the run's) is checked against the cache first
    (:func:`~avzsl.pipeline.data.split_checks.validate_splits`).

    For a method registered with ``needs_sequences`` the parts also get the per-window sequences of their videos
    (the first :meth:`Method.sequence_windows` windows of each, zero-padded per part, with the mask); a cache
    without sequences is refused first, before anything else is read. Other methods read and hold no sequences.

    Raises:
        CacheError: the method needs sequences and the cache has none (the message says how to get them).
    """
    cache = Path(cfg.cache)
    info = read_cache_info(cache)
    entry = get_method(cfg.method)
    what = f"method {cfg.method!r}"
    if entry.needs_sequences and not cache_has_sequences(cache):
        raise CacheError(sequences_missing_message(cache, what))
    if weights_are_random(info):
        _logger.warning(RANDOM_WEIGHTS_WARNING)
    splits = load_run_splits(cfg) if splits is None else splits
    features = load_features(cache)
    table = read_class_table(cache)
    data = build_protocol_data(splits, features, table, input_video_ids(cache))
    if entry.needs_sequences:
        max_windows = entry.cls.sequence_windows(method_options(cfg.method, cfg.method_options))
        ids = list(dict.fromkeys(v for part in (data.train1, data.val, data.train2, data.test)
                                 for v in part.video_ids))
        attach_sequences(data, load_sequences(cache, ids, max_windows, what=what))
    return data, info


def check_run_config(
    run_dir: Path, cfg: TrainConfig, overwrite: bool, identity: RunIdentity, changes: list[str] | None = None
) -> str:
    """Guard the run directory; returns ``"new"``, ``"resume"`` or ``"complete"``.

    A different configuration in an existing run directory is refused unless ``overwrite``; then the old run's
    files are removed. So is a run of this configuration trained on other inputs (``changes``, from
    :func:`~avzsl.pipeline.train.run_inputs.changed_inputs` against ``identity``; computed here when None). A new
    run records ``identity.json`` first, then ``config.json``.
    """
    path = run_dir / CONFIG_JSON
    if path.exists():
        try:
            old = read_json_file(path)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunConfigError(f"{path}: corrupt run configuration ({exc}); use --overwrite to start again") from exc
        if old.get("hash") != cfg.result_hash():
            if not overwrite:
                try:
                    old_cfg = TrainConfig.from_dict(old.get("config", {})).to_dict()
                except (TypeError, ValueError, KeyError):
                    old_cfg = old.get("config", {})
                diffs = config_differences(old_cfg, cfg.to_dict())
                listed = "; ".join(diffs[:8]) + (f"; ... ({len(diffs)} in all)" if len(diffs) > 8 else "")
                raise RunConfigError(
                    f"{run_dir} holds a run with a different configuration (hash {old.get('hash')} vs "
                    f"{cfg.result_hash()}; differs in: {listed or 'the stored format only'}); choose another --out "
                    "or pass --overwrite to replace it"
                )
            _logger.warning("--overwrite: removing the previous run in %s", run_dir)
            clear_run(run_dir)
        elif changes := (changed_inputs(run_dir, cfg, identity) if changes is None else changes):
            if not overwrite:
                refuse_changed_inputs(run_dir, changes)
            _logger.warning("--overwrite: removing the previous run in %s (trained on other inputs)", run_dir)
            clear_run(run_dir)
        elif run_status(run_dir) == "complete":
            return "complete"
        else:
            return "resume"
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_identity(run_dir, identity)  # first: a run directory with config.json always has its identity
    write_run_config(run_dir, cfg)
    return "new"


def run_stage1(cfg: TrainConfig, data: ProtocolData, run_dir: Path, device: torch.device) -> dict[str, Any]:
    """Stage 1, or its stored result when already finished: ``{"epoch": e*, "gamma": gamma*, S, U, H, ZSL}``."""
    stored = read_stage1_result(run_dir)
    if stored is not None:
        return stored
    result_path = stage1_result_path(run_dir)
    steps = batches_per_epoch(cfg, len(data.train1))
    trainer = StageTrainer(cfg, 1, data.train1, stage_dir(run_dir, 1), device, steps, val=data.val)
    trainer.resume()
    # A method without training is evaluated once ("epoch 1"), a closed-form one once per setting of its
    # regulariser grid (epoch i + 1 = setting i), with the same calibration and metrics.
    trainer.run(trainer.stage1_epochs(cfg.epochs))
    assert trainer.best is not None
    atomic_write_text(result_path, json.dumps(trainer.best, indent=2, sort_keys=True) + "\n")
    _logger.info(
        "stage 1: best epoch %d, gamma %.4g, val H %.2f",
        trainer.best["epoch"],
        trainer.best["gamma"],
        trainer.best["H"] * 100,
    )
    _log_calibration(trainer.best.get("calibration"))
    return trainer.best


def _log_calibration(summary: dict[str, Any] | None) -> None:
    """Say where the chosen calibration lies in its range, loudly when at an edge."""
    if not summary:
        return
    text = (f"calibration {summary['mode']}: gamma {summary['gamma']:.6g} in [{summary['low']:.6g}, "
            f"{summary['high']:.6g}]")
    if summary.get("at_edge"):
        verdict = ("the edge is really optimal: no gamma reaches a higher validation H" if summary.get("edge_optimal")
                   else f"the edge is NOT optimal: the best gamma reaches validation H {summary['exact_h'] * 100:.2f}"
                   f" (use --calibration exact)")
        _logger.warning("%s: AT THE EDGE of its range; %s", text, verdict)
    else:
        _logger.info("%s (interior)", text)


def run_stage2(
    cfg: TrainConfig,
    data: ProtocolData,
    run_dir: Path,
    device: torch.device,
    best: dict[str, Any],
    info: dict[str, Any],
) -> None:
    """Stage 2: retrain from scratch on stage_2_train for e* epochs and save ``model.pt``.

    ``model.pt`` also records the cache's ``cache.json`` (``info``) and its class phrases, so that prediction
    repeats the training features and class embeddings from the run alone.
    """
    if (run_dir / MODEL_PT).is_file():
        return
    # Same steps per epoch as stage 1: "after epoch e*" then means the same optimisation length in both stages.
    steps = batches_per_epoch(cfg, len(data.train1))
    trainer = StageTrainer(cfg, 2, data.train2, stage_dir(run_dir, 2), device, steps)
    trainer.resume()
    trainer.run(int(best["epoch"]))
    save_run_model(run_dir, cfg, trainer.model, part_dims(data.train2), best, data.train2.classes, info,
                   data.class_phrases, test_classes=data.test.classes)


def evaluate_run(run_dir: Path, data: ProtocolData | None = None, device: torch.device | None = None) -> dict[str, Any]:
    """Evaluate a trained run on the test split with the stage-1 gamma; writes ``RUN/metrics.json``.

    Returns:
        ``{"S", "U", "H", "ZSL"}`` (x100, rounded to 2 decimals), ``gamma`` (gamma*; files written before this
        version call it ``beta``, read both with :func:`avzsl.pipeline.run.layout.metrics_gamma`), ``epoch`` (e*),
        ``calibration`` (mode, range, edge verdict), per-class accuracies by class name, and the raw fractions.
    """
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    model, state = load_run_model(run_dir)
    recorded = check_run_record(run_dir, state)
    if data is None:
        splits = load_run_splits(cfg)
        if recorded is not None:
            changes = input_changes(recorded, current_identity(cfg, splits))
            if changes:
                refuse_evaluation(run_dir, changes)
        data, _ = load_protocol_data(cfg, splits)
    device = device or torch.device("cpu")
    model.to(device)
    test = data.test.to(device)
    calibration = "legacy" if getattr(model, "calibrated_on", "") == "scores" else cfg.calibration
    result = evaluate_part(model, test, cfg.eval_batch_size, gamma=float(state["gamma"]), calibration=calibration)
    m = result.metrics
    classes = test.classes

    def by_name(per_class: dict[Any, float]) -> dict[str, float]:
        return {classes[int(k)]: round(float(v) * 100, 2) for k, v in per_class.items()}

    metrics = {
        "S": round(m["S"] * 100, 2),
        "U": round(m["U"] * 100, 2),
        "H": round(m["H"] * 100, 2),
        "ZSL": round(m["ZSL"] * 100, 2),
        "gamma": float(state["gamma"]),
        "epoch": int(state["epoch"]),
        "method": str(state.get("method", cfg.method)),
        "per_class_seen": by_name(m.get("per_class_seen", {})),
        "per_class_unseen": by_name(m.get("per_class_unseen", {})),
        "fractions": {k: float(m[k]) for k in ("S", "U", "H", "ZSL")},
        "num_test_videos": len(test),
        "config_hash": cfg.result_hash(),
        "calibration": {
            "text": "gamma subtracted from the seen-class "
            + ("scores" if calibration == "legacy" else "calibration scores (the paper's method: log p)")
            + "; chosen on stage-1 validation with the stage-1 model, never on test",
            **{k: v for k, v in (state.get("calibration") or {"mode": "legacy", "on": "scores"}).items()},
        },
    }
    write_checked_json(run_dir / METRICS_JSON, metrics)
    return metrics


def finished_run_metrics(run_dir: Path, cfg: TrainConfig) -> dict[str, Any] | None:
    """The test metrics of a run that finished with this configuration, read without loading the cache; else None.

    Finished means: ``config.json`` of the same configuration hash, ``status.json`` complete, ``model.pt``
    present and ``metrics.json`` intact (its checksum). Anything else (including a damaged ``metrics.json``) is
    None, silently: :func:`train_run` then takes the full path, which reports it.
    """
    if stored_config_hash(run_dir) != cfg.result_hash() or run_status(run_dir) != "complete":
        return None
    path = run_dir / METRICS_JSON
    if not (run_dir / MODEL_PT).is_file() or not path.is_file():
        return None
    try:
        return read_checked_json(path, "it is made again")
    except IntegrityError:
        return None


def train_run(cfg: TrainConfig, run_dir: Path, device: torch.device, overwrite: bool = False) -> dict[str, Any]:
    """Run (or resume, or confirm) the whole protocol; returns the test metrics.

    The caller holds the run directory's lock.
    """
    run_dir = Path(run_dir)
    # Softmax over large dot-product logits (tau = 1) produces denormal floats, which make CPU steps up to ~30x
    # slower; flushing them to zero changes no result at float32 precision (see docs/method.md).
    torch.set_flush_denormal(True)
    cfg = align_config_paths(run_dir, cfg)
    identity = current_identity(cfg)
    changes = changed_inputs(run_dir, cfg, identity)
    if changes and not overwrite:
        refuse_changed_inputs(run_dir, changes)
    metrics = None if changes else finished_run_metrics(run_dir, cfg)
    if metrics is not None:
        # Up to date (every identity still matches) without loading the cache's features: cache.json and the
        # class table's attributes give the cache's digest; cache.json also gives the random-weights warning.
        check_run_record(run_dir, read_model_record(run_dir), warn_unchecked=False)
        if weights_are_random(read_cache_info(Path(cfg.cache))):
            _logger.warning(RANDOM_WEIGHTS_WARNING)
        _logger.info("%s is up to date: the run finished earlier with this configuration and these inputs", run_dir)
        return metrics
    data, info = load_protocol_data(cfg)
    state = check_run_config(run_dir, cfg, overwrite, identity, changes)
    if state == "complete":
        # A finished run whose metrics.json (or model.pt) was deleted or damaged is completed again, not stuck.
        metrics = read_checked_json_or_none(run_dir / METRICS_JSON, "the test metrics of the finished run")
        if metrics is not None and (run_dir / MODEL_PT).is_file():
            _logger.info("%s is up to date: the run finished earlier with this configuration", run_dir)
            return metrics
    if state == "resume":
        _logger.info("resuming the run in %s", run_dir)
        removed = remove_run_temporaries(run_dir)
        if removed:
            _logger.info("removed %d temporary file(s) of the interrupted run", len(removed))
    if data.missing:
        report = run_dir / MISSING_VIDEOS_CSV
        write_missing_report(data, report)
        _logger.warning(
            "%d video(s) of the split files are not in the cache (%s); listed in %s",
            data.num_missing,
            ", ".join(f"{k}: {len(v)}" for k, v in sorted(data.missing.items())),
            report,
        )
    best = run_stage1(cfg, data, run_dir, device)
    run_stage2(cfg, data, run_dir, device, best, info)
    metrics = evaluate_run(run_dir, data, device)
    mark_run_complete(run_dir, cfg.result_hash())
    return metrics
