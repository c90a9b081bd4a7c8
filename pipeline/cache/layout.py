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
# Keys that finalize adds to cache.json; the rest of the file is the identity of the extraction that wrote it.
_FINALIZE_KEYS = ("schema_version", "finalized", "content")


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
    """Read ``cache.json``; raises :class:`CacheError` naming the file when absent, corrupt or too new."""
    path = Path(cache_dir) / CACHE_INFO
    if not path.is_file():
        raise CacheError(f"{path}: not an avzsl feature cache (no {CACHE_INFO})")
    try:
        info = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CacheError(f"{path}: corrupt cache description ({exc})") from exc
    version = info.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise CacheError(f"{path}: schema version {version!r} is not supported (this avzsl reads <= {SCHEMA_VERSION})")
    return info


def stored_identity(cache_dir: Path) -> dict[str, Any] | None:
    """What ``cache.json`` says produced the cache, without the keys finalize adds; None when there is none yet."""
    if not (Path(cache_dir) / CACHE_INFO).is_file():
        return None
    info = read_cache_info(cache_dir)
    for key in _FINALIZE_KEYS:
        info.pop(key, None)
    return info


def weights_are_random(info: dict[str, Any]) -> bool:
    """Whether the cache was extracted with randomly initialised encoders."""
    return str(info.get("weights", {}).get("sha256", "")) == "random"
