"""``RUN/identity.json``: what a run was trained on, so that nothing evaluates or predicts with a run whose inputs or
files changed since.

Written once, when a run starts (before ``config.json``; with its checksum)::

    format            1
    config            TrainConfig.to_dict(), exactly as config.json holds it
    config_hash       TrainConfig.result_hash()
    method            the registered method
    cache             the cache folder (resolved) and its content digest (avzsl.pipeline.cache.content_digest;
                      null for a cache finalized by an older avzsl)
    splits            the split folder (resolved), or "benchmark NAME (VARIANT)", and its digest
                      (avzsl.pipeline.data.splits.splits_digest)

``model.pt`` records the digest of this record (``run_identity``), so a model file of another run is recognised.
What is compared (:func:`check_run_record`, :func:`input_changes`): the configuration in ``config.json`` against
the recorded one (the cache path, the split folder's path and ``eval_batch_size`` excepted: caches and split
folders are compared by content, and the scoring batch size changes no number); ``model.pt``'s method, config hash
and identity digest; the cache's and the split folder's digests now against the recorded ones. Runs written
before this record existed have no ``identity.json``: they still evaluate and predict, with a warning that they
cannot be checked.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from avzsl.pipeline.core.checksums import IntegrityError, read_checked_json, write_checked_json
from avzsl.pipeline.run.config import TrainConfig, config_differences, read_run_config_record
from avzsl.pipeline.run.layout import CONFIG_JSON, IDENTITY_JSON, MODEL_PT, RunConfigError

_logger = logging.getLogger(__name__)

IDENTITY_FORMAT = 1
_UNCHECKED_KEYS = ("splits",)  # besides cache and eval_batch_size, which config_differences leaves out itself
_RESTORE_MODEL = f"copy back the run's own {MODEL_PT}, or delete it and rerun avzsl-train with the same arguments"


@dataclass(frozen=True)
class RunIdentity:
    """What a run was trained on (the content of ``identity.json``).

    Attributes:
        config: ``TrainConfig.to_dict()`` as written to ``config.json``.
        config_hash: ``TrainConfig.result_hash()``.
        method: the registered method.
        cache: the cache folder, resolved.
        cache_digest: its content digest; None when the cache cannot be identified (finalized by an older avzsl).
        splits: the split folder, resolved, or ``benchmark NAME (VARIANT)``.
        splits_digest: the digest of what the split definition says.
    """

    config: dict[str, Any]
    config_hash: str
    method: str
    cache: str
    cache_digest: str | None
    splits: str
    splits_digest: str

    @classmethod
    def of(cls, cfg: TrainConfig, cache_digest: str | None, splits_digest: str) -> RunIdentity:
        """The identity of a configuration whose cache and splits have these digests (paths resolved)."""
        splits = (str(Path(cfg.splits).resolve()) if cfg.splits is not None
                  else f"benchmark {cfg.benchmark} ({cfg.split_variant})")
        return cls(cfg.to_dict(), cfg.result_hash(), cfg.method, str(Path(cfg.cache).resolve()), cache_digest,
                   splits, splits_digest)

    def to_dict(self) -> dict[str, Any]:
        return {"format": IDENTITY_FORMAT, **asdict(self)}

    def digest(self) -> str:
        """SHA-256 of the record (what ``model.pt`` stores as ``run_identity``)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def write_run_identity(run_dir: Path, identity: RunIdentity) -> None:
    """Write ``RUN/identity.json`` atomically, with its checksum."""
    write_checked_json(Path(run_dir) / IDENTITY_JSON, identity.to_dict())


def read_run_identity(run_dir: Path) -> RunIdentity | None:
    """The record of ``RUN/identity.json``; None for a run written before it existed.

    Raises:
        RunConfigError: the file was edited or damaged (checksum), or is not an identity record.
    """
    path = Path(run_dir) / IDENTITY_JSON
    if not path.is_file():
        return None
    rebuild = "it is the record of what the run was trained on and cannot be rebuilt: train a new run"
    try:
        record = read_checked_json(path, rebuild)
    except IntegrityError as exc:
        raise RunConfigError(str(exc)) from exc
    if record.get("format") != IDENTITY_FORMAT:
        raise RunConfigError(f"{path}: identity format {record.get('format')!r} is not one this avzsl reads")
    record.pop("format")
    try:
        return RunIdentity(**record)
    except TypeError as exc:
        raise RunConfigError(f"{path}: not a run identity record ({exc}); {rebuild}") from exc


def _short(digest: str | None) -> str:
    return "none" if digest is None else digest[:12]


def input_changes(recorded: RunIdentity, current: RunIdentity) -> list[str]:
    """What differs between the cache and split definition a run was trained on and the current ones (one
    sentence each; empty when both are the same)."""
    changes = []
    if recorded.cache_digest is None:
        _logger.warning("the run's cache %s had no content record when it was trained (finalized by an older "
                        "avzsl): whether it changed since cannot be checked", recorded.cache)
    elif current.cache_digest != recorded.cache_digest:
        where = (f"the cache {current.cache}" if current.cache == recorded.cache
                 else f"the cache {current.cache} (trained on {recorded.cache})")
        changes.append(f"{where} is not the one the run was trained on (content digest {_short(recorded.cache_digest)}"
                       f" when trained, {_short(current.cache_digest)} now: re-extracted, replaced or another cache)")
    if current.splits_digest != recorded.splits_digest:
        where = (f"the split folder {current.splits} changed since the run was trained" if current.splits ==
                 recorded.splits else f"the split definition is {current.splits}, the run was trained on "
                 f"{recorded.splits}, which says something else")
        changes.append(f"{where} (digest {_short(recorded.splits_digest)} when trained, "
                       f"{_short(current.splits_digest)} now): its test videos may have been trained on")
    return changes


def _model_mismatch(run_dir: Path, state: Mapping[str, Any], identity: RunIdentity | None,
                    record: Mapping[str, Any]) -> str | None:
    """Why ``model.pt`` (its payload ``state``) is not this run's model, or None."""
    config = record["config"]
    method = state.get("method")
    expected_method = identity.method if identity is not None else config.get("method")
    expected_hash = identity.config_hash if identity is not None else record.get("hash")
    parts = []
    if method is not None and expected_method is not None and method != expected_method:
        parts.append(f"method {method!r}, the run's is {expected_method!r}")
    if state.get("config_hash") is not None and expected_hash is not None and state["config_hash"] != expected_hash:
        parts.append(f"configuration hash {state['config_hash']}, the run's is {expected_hash}")
    if identity is not None and not parts and state.get("run_identity") != identity.digest():
        parts.append("it does not carry this run's identity (a model of another run with the same configuration)")
    if not parts:
        return None
    return f"{Path(run_dir) / MODEL_PT}: not this run's model ({'; '.join(parts)}); {_RESTORE_MODEL}"


def check_run_record(run_dir: Path, state: Mapping[str, Any], warn_unchecked: bool = True) -> RunIdentity | None:
    """Refuse a run whose files disagree with what it was trained on; returns its identity (None for an older run).

    Checks ``config.json`` against ``identity.json`` (an edited setting is named, old -> new) and ``model.pt``'s
    payload ``state`` against both (a model file of another method or run). A run without ``identity.json`` is
    accepted with a warning (unless ``warn_unchecked`` is False: the caller said so already); its ``model.pt`` is
    still compared with ``config.json`` (method, configuration hash).

    Raises:
        RunConfigError: naming the file and what changed.
    """
    run_dir = Path(run_dir)
    record = read_run_config_record(run_dir)
    identity = read_run_identity(run_dir)
    if identity is None and warn_unchecked:
        _logger.warning("%s was written by an older avzsl without %s: what it was trained on (configuration, model, "
                        "cache, split folder) cannot be checked", run_dir, IDENTITY_JSON)
    else:
        diffs = [d for d in config_differences(identity.config, record["config"])
                 if d.split(":", 1)[0] not in _UNCHECKED_KEYS]
        if diffs:
            raise RunConfigError(
                f"{run_dir / CONFIG_JSON}: changed since the run was trained ({'; '.join(diffs)}); the run's model "
                f"and metrics hold only for the recorded configuration ({IDENTITY_JSON}): restore it, or train a new "
                "run with avzsl-train --out NEW_DIR")
    problem = _model_mismatch(run_dir, state, identity, record)
    if problem is not None:
        raise RunConfigError(problem)
    return identity
