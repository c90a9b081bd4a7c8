"""What an extraction is: the feature-determining settings, the speed settings, the shard plan, the cache identity
written to ``cache.json``, and the results a run reports."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from avzsl.extractors.choices import DECODERS, SCHEDULES
from avzsl.extractors.encoders.precision import check_precision, legacy_precision
from avzsl.pipeline.cache import (
    IDENTITY_KEY,
    discard_extraction,
    identity_digest,
    stored_identity,
    write_cache_info,
)
from avzsl.pipeline.core.errors import InvalidValueError, UserError
from avzsl.pipeline.data.video_list import VideoEntry
from avzsl.pipeline.extract.world import WorldInfo

_logger = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = "0.1.0"
"""Frozen version of the extracted features' format, part of the cache identity (written as ``code_version`` in
``cache.json``): changing it makes every existing cache refuse a rerun. Not the avzsl package version."""


@dataclass
class ExtractConfig:
    """Settings that determine the features (hashed: a cache refuses a rerun with different ones).

    Attributes:
        encoder: registry name of the encoder pair.
        decoder: ``pyav`` or ``decord``.
        windows: window schedule, ``clean`` (1-s stride) or ``avca`` (the reference formula).
        shard_size: videos per shard.
        sequences: also store per-window features with window times.
        seed: seed of random encoder weights (``--random-weights`` only).
        precision: encoder forward precision, ``fp32`` (official features), ``bf16`` or ``fp16`` autocast.
    """

    encoder: str = "selavi_vggsound"
    decoder: str = "pyav"
    windows: str = "clean"
    shard_size: int = 256
    sequences: bool = True
    seed: int = 0
    precision: str = "fp32"

    def __post_init__(self) -> None:
        check_precision(self.precision)
        if self.decoder not in DECODERS:
            raise InvalidValueError(f"decoder must be 'pyav' or 'decord', not {self.decoder!r}")
        if self.windows not in SCHEDULES:
            raise InvalidValueError(f"windows must be 'clean' or 'avca', not {self.windows!r}")
        if self.shard_size < 1:
            raise InvalidValueError("shard size must be >= 1")


@dataclass
class RunOptions:
    """Settings that change speed, not features."""

    batch_size: int = 16
    workers: int = 2
    probe_jobs: int = 4
    device: str = "cpu"
    overwrite: bool = False
    progress: bool = True


@dataclass
class ShardResult:
    """What one shard produced."""

    shard: int
    videos: int
    ok: int
    windows: int
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: bool = False


@dataclass
class ExtractionSummary:
    """What a run of the extraction stage did."""

    shards_total: int
    shards_done: list[ShardResult]
    shards_skipped: int
    finalized: dict[str, Any] | None
    seconds: float


def list_hash(entries: Sequence[VideoEntry]) -> str:
    """Fingerprint of the input list (ids and classes, not absolute paths: the videos folder may move)."""
    digest = hashlib.sha256()
    for e in entries:
        digest.update(f"{e.video_id}\t{e.class_name}\n".encode())
    return digest.hexdigest()[:16]


def plan_shards(entries: Sequence[VideoEntry], shard_size: int) -> list[list[VideoEntry]]:
    """Fixed slices of the id-sorted video list: shard ``i`` holds the same videos on every rerun and rank."""
    ordered = sorted(entries, key=lambda e: e.video_id)
    return [ordered[i : i + shard_size] for i in range(0, len(ordered), shard_size)]


def cache_identity(cfg: ExtractConfig, entries: Sequence[VideoEntry], encoders: Any, embedder_info: dict) -> dict:
    """The ``cache.json`` content of this extraction (identical on every rank)."""
    weights = {"sha256": encoders.weights_sha256, "random_seed": cfg.seed if encoders.random_weights else None}
    if getattr(encoders, "provenance", None) is not None:  # multi-tower sets (CLIP/CLAP) record each tower
        weights["towers"] = encoders.provenance
    return {
        "encoder": {"name": cfg.encoder, "spec": encoders.spec.to_dict(), "spec_hash": encoders.spec.spec_hash()},
        "weights": weights,
        "extraction": asdict(cfg),
        "videos": {"count": len(entries), "list_hash": list_hash(entries)},
        "class_embedder": embedder_info,
        "code_version": CACHE_FORMAT_VERSION,
    }


def check_or_write_identity(
    cache_dir: Path, identity: dict, overwrite: bool, world: WorldInfo, device: str = "cpu"
) -> None:
    """Refuse to mix two different extractions in one cache unless ``overwrite`` (then start afresh).

    ``cache.json`` is written with the identity and its digest (``identity_sha256``), which every shard of this
    extraction carries too: after an ``--overwrite`` by one rank, the other ranks' shards of the old extraction are
    no longer trusted (they are extracted again, and the cache is not finalized before), though this rank deletes
    only the shards it owns (another rank may be running).

    A cache written before ``precision`` existed ran at bf16 on CUDA and fp32 elsewhere; it matches a rerun at that
    precision on the same kind of device.
    """
    old = stored_identity(cache_dir)
    if old is not None:
        if isinstance(old.get("extraction"), dict) and "precision" not in old["extraction"]:
            old["extraction"]["precision"] = legacy_precision(device)
        if old == identity:
            return
        changed = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
        if not overwrite:
            raise UserError(
                f"{cache_dir} holds features of a different extraction (differs in: {', '.join(changed)}); "
                "use another --out or pass --overwrite to replace them"
            )
        _logger.warning("--overwrite: removing the shards this rank owns in %s (changed: %s)", cache_dir, changed)
        discard_extraction(cache_dir, world.owns)
    write_cache_info(cache_dir, {**identity, IDENTITY_KEY: identity_digest(identity)})
