"""What a run is trained on: its split definition, the identity of its inputs now, and the refusals when they are
not the ones a run directory was trained on.

The identity record itself (``RUN/identity.json``) is owned by :mod:`avzsl.pipeline.run.identity`; this stage
module computes the current one (it needs the cache and the split files) and decides what training and evaluation
do when it differs.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from avzsl.data_manifests import benchmark_splits
from avzsl.pipeline.cache import content_digest
from avzsl.pipeline.data.splits import Splits, load_splits, splits_digest
from avzsl.pipeline.run.config import TrainConfig, read_run_config_record
from avzsl.pipeline.run.identity import RunIdentity, input_changes, read_run_identity
from avzsl.pipeline.run.layout import CONFIG_JSON, RunConfigError, stored_config_hash

_logger = logging.getLogger(__name__)


def load_run_splits(cfg: TrainConfig) -> Splits:
    """The split definition of a run: a folder, or a built-in benchmark."""
    if cfg.splits is not None:
        return load_splits(Path(cfg.splits))
    return benchmark_splits(cfg.benchmark, cfg.split_variant)


def current_identity(cfg: TrainConfig, splits: Splits | None = None) -> RunIdentity:
    """The identity of ``cfg`` with its cache and split definition as they are now (cheap: ``cache.json``, the
    class table's attributes and the split files are read, no features)."""
    splits = load_run_splits(cfg) if splits is None else splits
    return RunIdentity.of(cfg, content_digest(Path(cfg.cache)), splits_digest(splits))


def align_config_paths(run_dir: Path, cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with the run's own spelling of its split folder when both name the same folder.

    The split folder's path is part of the configuration hash; ``--splits splits`` and ``--splits /abs/splits``
    (or a path through a symlink) are the same folder and must resume the same run, not be refused as another
    configuration. Paths are compared resolved; the run's recorded resolved path is used when there is one
    (``identity.json``), else its stored path resolved from the current directory.
    """
    run_dir = Path(run_dir)
    if cfg.splits is None or not (run_dir / CONFIG_JSON).is_file():
        return cfg
    try:
        stored = read_run_config_record(run_dir)["config"].get("splits")
        identity = read_run_identity(run_dir)
    except RunConfigError:
        return cfg  # the run's own checks report a damaged record
    if not isinstance(stored, str) or stored == cfg.splits:
        return cfg
    recorded = Path(stored)
    if identity is not None and Path(identity.splits).is_absolute():
        recorded = Path(identity.splits)
    if recorded.resolve() != Path(cfg.splits).resolve():
        return cfg
    _logger.info("--splits %s is the run's split folder %s (same folder, other spelling)", cfg.splits, stored)
    return dataclasses.replace(cfg, splits=stored)


def changed_inputs(run_dir: Path, cfg: TrainConfig, current: RunIdentity) -> list[str]:
    """What changed in the inputs of the run of this very configuration in ``run_dir`` (empty when there is no such
    run, when nothing changed, or for a run written before identities were recorded, with a warning then)."""
    if stored_config_hash(run_dir) != cfg.result_hash():
        return []
    recorded = read_run_identity(run_dir)
    if recorded is None:
        _logger.warning("%s was written by an older avzsl without a record of its cache and split folder: whether "
                        "they changed since cannot be checked", run_dir)
        return []
    return input_changes(recorded, current)


def refuse_changed_inputs(run_dir: Path, changes: list[str]) -> None:
    """The refusal of ``avzsl-train`` when the run in ``run_dir`` was trained on other inputs."""
    raise RunConfigError(
        f"{run_dir} holds a run of this configuration trained on other inputs: {'; '.join(changes)}. Train on the "
        "current inputs with another --out (this run stays as it is), or pass --overwrite to retrain here (this "
        "run's checkpoints and results are then deleted)"
    )


def refuse_evaluation(run_dir: Path, changes: list[str]) -> None:
    """The refusal of ``avzsl-evaluate`` when the run's inputs changed since it was trained."""
    raise RunConfigError(
        f"{run_dir}: cannot evaluate: {'; '.join(changes)}. The run's numbers hold only for what it was trained "
        "on: restore those inputs, or train a new run on the current ones (avzsl-train --out NEW_DIR)"
    )
