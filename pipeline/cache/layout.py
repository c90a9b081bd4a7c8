"""Where everything of a cache directory lives, what its records hold, and ``cache.json``.

The layout and schema are described in ``docs/cache_format.md``::

    CACHE/
      cache.json            schema version, encoder spec, weights hash (or "random"), code version
      classes.h5            class table: name, embedded phrase, embedding (C, D_W), embedder provenance
      shards/shard-00000.h5 row-aligned per-video features; attrs["complete"] is set last
      shards/shard-00000.stats.json   written after the shard is renamed into place
      index.h5              virtual datasets over every shard + copied ids (written by ``finalize``)
      index.csv             video_id, class_name, shard, row
      manifest.csv          every input video of an extraction, failures.csv the ones that failed
      .avzsl.lock.rank<r>of<w>, .avzsl.finalize.lock   extraction locks

Every file is written through :func:`avzsl.pipeline.core.atomic.atomic_write` (a ``.<name>.<random>.tmp`` beside
it, renamed when complete), so a crash never leaves a half-written file under a final name. Split membership is
never stored here: splits come from manifests.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avzsl.pipeline.core.atomic import atomic_write_text
from avzsl.pipeline.core.errors import CacheError, InvalidValueError
from avzsl.pipeline.core.safe_read import UnreadableFileError, read_json_file

SCHEMA_VERSION = 1
CACHE_INFO = "cache.json"
CLASS_TABLE = "classes.h5"
INDEX_H5 = "index.h5"
INDEX_CSV = "index.csv"
SHARD_DIR = "shards"
MANIFEST_CSV = "manifest.csv"
FAILURES_CSV = "failures.csv"
FINALIZE_LOCK = ".avzsl.finalize.lock"
RANK_LOCK_GLOB = ".avzsl.lock.rank*of*"
RERUN = "rerun avzsl-extract with the same arguments (avzsl-import for an imported cache) to redo it"
RECORD_FIELDS = (
    "video_id",
    "class_name",
    "path",
    "status",
    "reason",
    "duration_s",
    "fps",
    "frame_count",
    "width",
    "height",
    "has_audio",
    "windows",
    "shard",
    "flags",
    "size_bytes",
    "mtime_ns",
)
"""Columns of ``manifest.csv`` and ``failures.csv``: the keys of a shard's per-input-video records."""
FINALIZE_OUTPUTS = (INDEX_H5, INDEX_CSV, CLASS_TABLE, MANIFEST_CSV, FAILURES_CSV)
"""Files that only the finalize of a cache writes (deleted when an extraction starts afresh)."""

_SHARD_RE = re.compile(r"^shard-(\d{5,})\.h5$")
_RANK_LOCK_RE = re.compile(r"^\.avzsl\.lock\.rank(\d+)of(\d+)$")
IDENTITY_KEY = "identity_sha256"
"""SHA-256 of an extraction's identity (:func:`identity_digest`): in ``cache.json`` when an extraction wrote it, and on
every shard an extraction writes (a root attribute), so a rank trusts only the shards of the current extraction."""
# Keys that are not part of the identity of the extraction that wrote cache.json (finalize adds the last two).
_NOT_IDENTITY_KEYS = ("schema_version", IDENTITY_KEY, "finalized", "content")


@dataclass
class VideoFeatures:
    """Features of one video.

    Attributes:
        video_id: stable id (relative path of the source video).
        class_name: class name as given by the folder layout or manifest.
        audio_mean: ``(D_A,)`` float32, mean over windows.
        visual_mean: ``(D_V,)`` float32, mean over windows.
        audio_seq: optional ``(T, D_A)`` float32 per-window features.
        visual_seq: optional ``(T, D_V)`` float32 per-window features.
        window_sec: optional ``(T, 2)`` float32 window start/end in seconds.
    """

    video_id: str
    class_name: str
    audio_mean: np.ndarray
    visual_mean: np.ndarray
    audio_seq: np.ndarray | None = None
    visual_seq: np.ndarray | None = None
    window_sec: np.ndarray | None = None


@dataclass
class ClassTable:
    """Class-name embeddings.

    Attributes:
        names: class names as given (dataset spelling).
        phrases: the phrase that was embedded for each class.
        embeddings: ``(C, D_W)`` float32.
        provenance: how the embeddings were made (embedder, vectors file, OOV policy, ...).
    """

    names: list[str]
    phrases: list[str]
    embeddings: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.embeddings = np.asarray(self.embeddings, dtype=np.float32)
        if not (len(self.names) == len(self.phrases) == self.embeddings.shape[0]):
            raise ValueError(
                f"class table rows disagree: {len(self.names)} names, {len(self.phrases)} phrases, "
                f"{self.embeddings.shape[0]} embeddings"
            )
        lowered = [n.lower() for n in self.names]
        dupes = sorted({n for n in lowered if lowered.count(n) > 1})
        if dupes:
            raise InvalidValueError(f"class names must be unique (case-insensitively); repeated: {dupes}")

    def lookup(self, class_names: Sequence[str]) -> np.ndarray:
        """Embeddings ``(len(class_names), D_W)`` for the given names, matched case-insensitively."""
        position = {n.lower(): i for i, n in enumerate(self.names)}
        missing = [n for n in class_names if n.lower() not in position]
        if missing:
            raise CacheError(f"class table has no embedding for {len(missing)} class(es): {missing}")
        return self.embeddings[[position[n.lower()] for n in class_names]]


@dataclass
class FeatureTable:
    """Averaged features of many videos, loaded into memory once.

    Attributes:
        video_ids: ``N`` ids.
        class_names: ``N`` class names.
        audio: ``(N, D_A)`` float32 tensor.
        visual: ``(N, D_V)`` float32 tensor.
    """

    video_ids: list[str]
    class_names: list[str]
    audio: torch.Tensor
    visual: torch.Tensor

    def __len__(self) -> int:
        return len(self.video_ids)

    def subset(self, rows: Sequence[int]) -> FeatureTable:
        """A table holding only ``rows`` (in that order)."""
        index = torch.as_tensor(list(rows), dtype=torch.long)
        return FeatureTable(
            video_ids=[self.video_ids[i] for i in rows],
            class_names=[self.class_names[i] for i in rows],
            audio=self.audio.index_select(0, index),
            visual=self.visual.index_select(0, index),
        )


# ----------------------------------------------------------------------------------------------------------
# shard files


def shard_path(cache_dir: Path, shard_index: int) -> Path:
    """Final path of shard ``shard_index`` (the manifest shard index, not a rank)."""
    return Path(cache_dir) / SHARD_DIR / f"shard-{shard_index:05d}.h5"


def shard_index(path: Path) -> int | None:
    """The index of a shard file from its name (``shard-00012.h5`` -> 12); None for any other name."""
    match = _SHARD_RE.match(Path(path).name)
    return int(match.group(1)) if match else None


def list_shards(cache_dir: Path) -> list[Path]:
    """Final shard files present in the cache, sorted by index (complete or not)."""
    directory = Path(cache_dir) / SHARD_DIR
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if shard_index(p) is not None)


def shard_stats_path(shard: Path) -> Path:
    """Stats file of the shard file ``shard`` (``shard-00000.h5`` -> ``shard-00000.stats.json``)."""
    shard = Path(shard)
    return shard.with_name(shard.name[: -len(".h5")] + ".stats.json")


def stats_path(cache_dir: Path, index: int) -> Path:
    """Stats file of shard ``index`` (written after the shard itself)."""
    return shard_stats_path(shard_path(cache_dir, index))


def legacy_temporary(path: Path) -> Path:
    """The temporary name avzsl versions before the common atomic writer used for ``path`` (``<name>.tmp``), so
    leftovers of an interrupted older run are recognised too."""
    path = Path(path)
    return path.with_name(path.name + ".tmp")


# ----------------------------------------------------------------------------------------------------------
# extraction locks


def rank_lock_name(rank: int, world_size: int) -> str:
    """Name of the extraction lock of one rank: the world size is part of it (``.avzsl.lock.rank0of2``)."""
    return f".avzsl.lock.rank{rank}of{world_size}"


def rank_locks(cache_dir: Path) -> list[tuple[Path, int, int]]:
    """The rank lock files present in ``cache_dir``, sorted, as ``(path, rank, world_size)``."""
    found = []
    for lock in sorted(Path(cache_dir).glob(RANK_LOCK_GLOB)):
        match = _RANK_LOCK_RE.match(lock.name)
        if match is not None:
            found.append((lock, int(match.group(1)), int(match.group(2))))
    return found


def extraction_locks(cache_dir: Path) -> list[Path]:
    """Every lock file an extraction of ``cache_dir`` may hold (rank locks present and the finalize lock), sorted."""
    cache_dir = Path(cache_dir)
    return sorted([*cache_dir.glob(RANK_LOCK_GLOB), cache_dir / FINALIZE_LOCK])


# ----------------------------------------------------------------------------------------------------------
# cache.json


def write_cache_info(cache_dir: Path, info: dict[str, Any]) -> None:
    """Write ``cache.json`` atomically; ``schema_version`` is added when absent."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    payload = {"schema_version": SCHEMA_VERSION, **info}
    atomic_write_text(cache_dir / CACHE_INFO, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def read_cache_info(cache_dir: Path) -> dict[str, Any]:
    """Read ``cache.json``; raises :class:`CacheError` naming the file when absent, corrupt, too new, not a regular
    file or far larger than any avzsl writes (:func:`~avzsl.pipeline.core.safe_read.read_json_file`)."""
    path = Path(cache_dir) / CACHE_INFO
    if not path.exists():
        raise CacheError(f"{path}: not an avzsl feature cache (no {CACHE_INFO})")
    try:
        info = read_json_file(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CacheError(f"{path}: corrupt cache description ({exc})") from exc
    except UnreadableFileError as exc:
        raise CacheError(str(exc)) from exc
    if not isinstance(info, dict):
        raise CacheError(f"{path}: corrupt cache description (not a JSON object)")
    version = info.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise CacheError(f"{path}: schema version {version!r} is not supported (this avzsl reads <= {SCHEMA_VERSION})")
    return info


def stored_identity(cache_dir: Path) -> dict[str, Any] | None:
    """What ``cache.json`` says produced the cache, without the keys finalize adds; None when there is none yet."""
    if not (Path(cache_dir) / CACHE_INFO).exists():
        return None
    info = read_cache_info(cache_dir)
    for key in _NOT_IDENTITY_KEYS:
        info.pop(key, None)
    return info


def identity_digest(identity: dict[str, Any]) -> str:
    """SHA-256 of an extraction's identity (the ``cache.json`` content it writes), over its canonical JSON."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def recorded_identity(cache_dir: Path) -> str | None:
    """The identity digest ``cache.json`` records; None when there is no ``cache.json`` or it was written by an
    avzsl that did not record one (then shards without a recorded identity are of the extraction that wrote it)."""
    if not (Path(cache_dir) / CACHE_INFO).exists():
        return None
    value = read_cache_info(cache_dir).get(IDENTITY_KEY)
    return str(value) if value is not None else None


def weights_are_random(info: dict[str, Any]) -> bool:
    """Whether the cache was extracted with randomly initialised encoders."""
    return str(info.get("weights", {}).get("sha256", "")) == "random"
