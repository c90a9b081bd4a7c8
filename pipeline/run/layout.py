"""The run directory of ``avzsl-train``: its file names, its status and the small readers of its JSON files.

Every module that reads or writes a run directory takes the names from here::

    RUN/config.json            resolved TrainConfig + its hash (a different config is refused)
    RUN/identity.json          what the run was trained on: config, method, cache and split digests
                               (:mod:`avzsl.pipeline.run.identity`; checked by train, evaluate and predict)
    RUN/train.log              the run's log
    RUN/stage1/last.pt         checkpoint after the last finished epoch (model, optimizer, RNG states, history)
    RUN/stage1/epochs.jsonl    one line per epoch: losses, seconds, validation S/U/H/ZSL and gamma
    RUN/stage1/result.json     best epoch e*, gamma*, its validation metrics (written when stage 1 ends)
    RUN/stage2/last.pt, RUN/stage2/epochs.jsonl
    RUN/model.pt               the stage-2 model for evaluation and prediction (:mod:`avzsl.pipeline.run.model_file`)
    RUN/metrics.json           test S, U, H, ZSL (written by evaluation, with its checksum)
    RUN/missing_videos.csv     split videos the cache does not hold (only when there are some)
    RUN/status.json            ``{"state": "complete", "hash": ...}`` once the run finished

Every file avzsl writes in a run directory is listed in :data:`RUN_FILES` and :data:`STAGE_FILES`: a resumed run
deletes only the temporary files interrupted writes of those left (:func:`remove_run_temporaries`), never another
file that happens to end in ``.tmp``. JSON files are read through
:func:`~avzsl.pipeline.core.safe_read.read_json_file` (regular files only, size bounded).

This module stays cheap to import (no torch): the CLIs and the sweep tables take file names from it. The
configuration reader (:func:`avzsl.pipeline.run.config.read_run_config`) lives beside ``TrainConfig``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from avzsl.pipeline.core.atomic import atomic_write_text, remove_temporaries_of
from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.core.safe_read import read_json_file

CONFIG_JSON = "config.json"
IDENTITY_JSON = "identity.json"
TRAIN_LOG = "train.log"
MODEL_PT = "model.pt"
METRICS_JSON = "metrics.json"
STATUS_JSON = "status.json"
MISSING_VIDEOS_CSV = "missing_videos.csv"
STAGES = (1, 2)
LAST_CHECKPOINT = "last.pt"
"""Per stage directory: the checkpoint after the last finished epoch."""
EPOCHS_JSONL = "epochs.jsonl"
"""Per stage directory: one JSON line per finished epoch."""
STAGE_RESULT_JSON = "result.json"
"""In the stage-1 directory: e*, gamma* and their validation metrics."""
RUN_FILES = (CONFIG_JSON, MODEL_PT, METRICS_JSON, STATUS_JSON, MISSING_VIDEOS_CSV, IDENTITY_JSON)
"""Files avzsl writes at the top of a run directory (atomically; ``train.log`` is appended to)."""
STAGE_FILES = (LAST_CHECKPOINT, EPOCHS_JSONL, STAGE_RESULT_JSON)
"""Files avzsl writes (atomically) in a stage directory."""

RANDOM_WEIGHTS_WARNING = (
    "this cache was extracted with RANDOM encoder weights (--random-weights): numbers are for testing the pipeline, "
    "not comparable with published results"
)


class RunConfigError(UserError):
    """The run directory holds a run with a different configuration, or is not a run directory."""


def stage_dir(run_dir: Path, stage: int) -> Path:
    """``RUN/stage1`` or ``RUN/stage2``: the checkpoint and epoch history of one protocol stage."""
    return Path(run_dir) / f"stage{stage}"


def stage_epochs_path(run_dir: Path, stage: int) -> Path:
    """``RUN/stageN/epochs.jsonl``."""
    return stage_dir(run_dir, stage) / EPOCHS_JSONL


def stage1_result_path(run_dir: Path) -> Path:
    """``RUN/stage1/result.json``."""
    return stage_dir(run_dir, 1) / STAGE_RESULT_JSON


def stored_config_hash(run_dir: Path) -> str | None:
    """The configuration hash in ``RUN/config.json``; None when the file is absent or not readable JSON."""
    path = Path(run_dir) / CONFIG_JSON
    if not path.exists():
        return None
    try:
        record = read_json_file(path)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return record.get("hash") if isinstance(record, dict) else None


def read_stage1_result(run_dir: Path) -> dict[str, Any] | None:
    """``RUN/stage1/result.json`` (e*, gamma*, validation metrics), or None when stage 1 has not finished."""
    path = stage1_result_path(run_dir)
    if not path.exists():
        return None
    try:
        result = read_json_file(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunConfigError(f"{path}: damaged ({exc}); delete it and rerun avzsl-train to make it again") from exc
    if not isinstance(result, dict):
        raise RunConfigError(f"{path}: damaged (not a JSON object); delete it and rerun avzsl-train to make it again")
    return result


def remove_run_temporaries(run_dir: Path) -> list[Path]:
    """Delete the temporary files that interrupted writes of the run's own files left; returns what was removed.

    Only the temporaries of :data:`RUN_FILES` and :data:`STAGE_FILES` (``.<name>.<random>.tmp``,
    :func:`~avzsl.pipeline.core.atomic.temporaries_of`) are touched: a user's ``notes.tmp`` anywhere in the run
    directory stays. The caller holds the run directory's lock.
    """
    run_dir = Path(run_dir)
    targets = [run_dir / name for name in RUN_FILES]
    targets += [stage_dir(run_dir, stage) / name for stage in STAGES for name in STAGE_FILES]
    return remove_temporaries_of(targets)


def clear_run(run_dir: Path) -> None:
    """Remove a previous run's stage files and results (``config.json`` and ``train.log`` are rewritten or kept)."""
    for stage in STAGES:
        for file in stage_dir(run_dir, stage).glob("*"):
            file.unlink()
    for name in (MODEL_PT, METRICS_JSON, STATUS_JSON, MISSING_VIDEOS_CSV, IDENTITY_JSON):
        (Path(run_dir) / name).unlink(missing_ok=True)


def run_status(run_dir: Path) -> str:
    """The state in ``RUN/status.json``: ``"complete"`` for a finished run, ``"running"`` when absent or unreadable."""
    path = Path(run_dir) / STATUS_JSON
    if not path.exists():
        return "running"
    try:
        record = read_json_file(path)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "running"
    return record.get("state", "running") if isinstance(record, dict) else "running"


def mark_run_complete(run_dir: Path, config_hash: str) -> None:
    """Write ``RUN/status.json`` saying that the run of ``config_hash`` finished (the last file a run writes)."""
    atomic_write_text(Path(run_dir) / STATUS_JSON, json.dumps({"state": "complete", "hash": config_hash}) + "\n")


def run_is_finished(run_dir: Path) -> bool:
    """Whether a run directory holds a finished run (``status.json`` complete and ``metrics.json`` present)."""
    return (Path(run_dir) / METRICS_JSON).is_file() and run_status(run_dir) == "complete"


def metrics_gamma(metrics: dict[str, Any]) -> float:
    """The calibration value of a ``metrics.json`` (``gamma``, or ``beta`` in files of the former format)."""
    value = metrics.get("gamma", metrics.get("beta"))
    return float("nan") if value is None else float(value)
