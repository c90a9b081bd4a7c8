"""The feature cache: HDF5 shards of per-video features, a class table, and an index over all shards.

This module is the only code that reads or writes a cache directory (layout and schema in
``docs/cache_format.md``)::

    CACHE/
      cache.json            schema version, encoder spec, weights hash (or "random"), code version
      classes.h5            class table: name, embedded phrase, embedding (C, D_W), embedder provenance
      shards/shard-00000.h5 row-aligned per-video features; attrs["complete"] is set last
      shards/shard-00000.stats.json   written after the shard is renamed into place
      index.h5              virtual datasets over every shard + copied ids (written by ``finalize``)
      index.csv             video_id, class_name, shard, row

Shards are written to ``*.h5.tmp`` and renamed when complete, so a crash never leaves a half-written
shard under a final name. Split membership is never stored here: splits come from manifests.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from avzsl.pipeline.atomic import atomic_write_csv, atomic_write_text, fsync_file, remove_temporaries
from avzsl.pipeline.errors import CacheError  # noqa: F401 - defined there so CLIs catch it without torch
from avzsl.pipeline.faults import crash_point

_logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CACHE_INFO = "cache.json"
CLASS_TABLE = "classes.h5"
INDEX_H5 = "index.h5"
INDEX_CSV = "index.csv"
SHARD_DIR = "shards"
_SHARD_RE = re.compile(r"^shard-(\d{5,})\.h5$")
_STR = h5py.string_dtype(encoding="utf-8")


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
            raise ValueError(f"class names must be unique (case-insensitively); repeated: {dupes}")

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
# HDF5 files


@contextlib.contextmanager
def write_h5(path: Path) -> Iterator[h5py.File]:
    """Build an HDF5 file in memory and, when the block ends normally, write its bytes to ``path``.

    HDF5 reports a failed write (disk full, file size limit) as a ``RuntimeError`` and can leave its library
    state broken (a full disk under ``h5py.File(path, "w")`` was seen to end in a segfault while closing). Writing
    the finished bytes with ordinary file I/O turns that into a clean ``OSError`` (``ENOSPC``, ``EFBIG``) that the
    command-line tools report in one line; ``path`` is removed when that write fails. The file is held in memory
    once (a shard is at most ``shard_size`` videos of features).
    """
    path = Path(path)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        yield f
    try:
        with path.open("wb") as out:
            out.write(buffer.getbuffer())
    except OSError as exc:
        path.unlink(missing_ok=True)
        if exc.filename is None:  # write() errors carry no file name: add it for the one-line message
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        path.unlink(missing_ok=True)
        raise


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


def weights_are_random(info: dict[str, Any]) -> bool:
    """Whether the cache was extracted with randomly initialised encoders."""
    return str(info.get("weights", {}).get("sha256", "")) == "random"


# ----------------------------------------------------------------------------------------------------------
# shards


def shard_path(cache_dir: Path, shard_index: int) -> Path:
    """Final path of shard ``shard_index`` (the manifest shard index, not a rank)."""
    return Path(cache_dir) / SHARD_DIR / f"shard-{shard_index:05d}.h5"


def list_shards(cache_dir: Path) -> list[Path]:
    """Final shard files present in the cache, sorted by index (complete or not)."""
    directory = Path(cache_dir) / SHARD_DIR
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _SHARD_RE.match(p.name))


def remove_temporary_files(cache_dir: Path) -> list[Path]:
    """Delete leftovers of interrupted writes (``*.tmp``) and return what was removed (caller holds the lock)."""
    removed = remove_temporaries(Path(cache_dir)) + remove_temporaries(Path(cache_dir) / SHARD_DIR)
    if removed:
        _logger.info("removed %d temporary file(s) left by an interrupted run", len(removed))
    return removed


def write_shard(
    path: Path,
    videos: Sequence[VideoFeatures],
    attrs: dict[str, Any],
    video_records: Sequence[dict[str, Any]] | None = None,
) -> None:
    """Write one shard atomically: ``path.tmp`` first, ``attrs["complete"]`` last, fsync, rename.

    Args:
        path: final shard path (``shard-XXXXX.h5``).
        videos: the shard's videos, in row order. All must have sequences or none.
        attrs: JSON-serialisable attributes stored on the file root (encoder spec hash, shard index, ...).
        video_records: what happened to every input video of the shard, failures included (status, reason,
            probe metadata); stored as JSON so the shard alone says which videos it holds and why others are absent.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with_seq = [v.audio_seq is not None for v in videos]
    if any(with_seq) and not all(with_seq):
        raise ValueError(f"{path}: either every video of a shard has per-window sequences or none has")
    try:
        with write_h5(tmp) as f:
            n = len(videos)
            f.create_dataset("video_id", data=np.array([v.video_id for v in videos], dtype=object), dtype=_STR)
            f.create_dataset("class_name", data=np.array([v.class_name for v in videos], dtype=object), dtype=_STR)
            for name in ("audio_mean", "visual_mean"):
                rows = [np.asarray(getattr(v, name), dtype=np.float32) for v in videos]
                dim = rows[0].shape[0] if rows else 0
                data = np.stack(rows) if rows else np.zeros((0, dim), np.float32)
                f.create_dataset(name, data=data, chunks=(max(1, min(n, 512)), dim) if n else None)
            if videos and all(with_seq):
                lengths = np.array([v.audio_seq.shape[0] for v in videos], dtype=np.int64)
                f.create_dataset("seq_offsets", data=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
                f.create_dataset("audio_seq", data=np.concatenate([v.audio_seq for v in videos]).astype(np.float32))
                f.create_dataset("visual_seq", data=np.concatenate([v.visual_seq for v in videos]).astype(np.float32))
                f.create_dataset("window_sec", data=np.concatenate([v.window_sec for v in videos]).astype(np.float32))
            if video_records is not None:
                f.create_dataset("video_records", data=json.dumps(list(video_records), sort_keys=True), dtype=_STR)
            for key, value in attrs.items():
                f.attrs[key] = json.dumps(value) if isinstance(value, dict | list) else value
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["num_videos"] = n
            f.flush()
            f.attrs["complete"] = True
        fsync_file(tmp)
        crash_point(f"before-rename:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def shard_is_complete(path: Path) -> bool:
    """True only if the shard opens, carries ``complete`` and its datasets agree in length."""
    try:
        with h5py.File(path, "r") as f:
            if not bool(f.attrs.get("complete", False)):
                return False
            n = int(f.attrs["num_videos"])
            names = ("video_id", "class_name", "audio_mean", "visual_mean")
            if any(f[name].shape[0] != n for name in names):
                return False
            if "seq_offsets" in f:
                offsets = f["seq_offsets"]
                if offsets.shape[0] != n + 1 or int(offsets[-1]) != f["audio_seq"].shape[0]:
                    return False
            return True
    except (OSError, KeyError, ValueError):
        return False


def read_shard(path: Path, with_sequences: bool = False) -> list[VideoFeatures]:
    """Read every video of a complete shard (sequences only when asked)."""
    if not shard_is_complete(path):
        raise CacheError(f"{path}: shard is incomplete or corrupt")
    with h5py.File(path, "r") as f:
        ids = [s.decode() if isinstance(s, bytes) else s for s in f["video_id"].asstr()[...]]
        classes = list(f["class_name"].asstr()[...])
        audio = f["audio_mean"][...]
        visual = f["visual_mean"][...]
        seq = None
        if with_sequences and "seq_offsets" in f:
            seq = (f["seq_offsets"][...], f["audio_seq"][...], f["visual_seq"][...], f["window_sec"][...])
    videos = []
    for i, (vid, cls) in enumerate(zip(ids, classes, strict=True)):
        item = VideoFeatures(vid, cls, audio[i], visual[i])
        if seq is not None:
            lo, hi = int(seq[0][i]), int(seq[0][i + 1])
            item.audio_seq, item.visual_seq, item.window_sec = seq[1][lo:hi], seq[2][lo:hi], seq[3][lo:hi]
        videos.append(item)
    return videos


def read_video_records(path: Path) -> list[dict[str, Any]]:
    """The per-input-video records stored in a shard (empty when the shard has none)."""
    with h5py.File(path, "r") as f:
        if "video_records" not in f:
            return []
        raw = f["video_records"][()]
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def read_shard_attrs(path: Path) -> dict[str, Any]:
    """Root attributes of a shard, JSON values decoded."""
    with h5py.File(path, "r") as f:
        out: dict[str, Any] = {}
        for key, value in f.attrs.items():
            if isinstance(value, str) and value[:1] in "[{":
                with contextlib.suppress(json.JSONDecodeError):
                    value = json.loads(value)
            out[key] = value.item() if isinstance(value, np.generic) else value
        return out


# ----------------------------------------------------------------------------------------------------------
# class table


def write_class_table(cache_dir: Path, table: ClassTable) -> None:
    """Write ``classes.h5`` atomically."""
    path = Path(cache_dir) / CLASS_TABLE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with write_h5(tmp) as f:
        f.create_dataset("name", data=np.array(table.names, dtype=object), dtype=_STR)
        f.create_dataset("phrase", data=np.array(table.phrases, dtype=object), dtype=_STR)
        f.create_dataset("embedding", data=table.embeddings.astype(np.float32))
        f.attrs["provenance"] = json.dumps(table.provenance, sort_keys=True)
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["complete"] = True
    fsync_file(tmp)
    os.replace(tmp, path)


def read_class_table(cache_dir: Path) -> ClassTable:
    """Read ``classes.h5``; raises :class:`CacheError` naming the file when absent or corrupt."""
    path = Path(cache_dir) / CLASS_TABLE
    if not path.is_file():
        raise CacheError(f"{path}: the cache has no class table")
    try:
        with h5py.File(path, "r") as f:
            if not bool(f.attrs.get("complete", False)):
                raise CacheError(f"{path}: class table is incomplete")
            return ClassTable(
                names=list(f["name"].asstr()[...]),
                phrases=list(f["phrase"].asstr()[...]),
                embeddings=f["embedding"][...],
                provenance=json.loads(f.attrs.get("provenance", "{}")),
            )
    except (OSError, KeyError) as exc:
        raise CacheError(f"{path}: corrupt class table ({exc})") from exc


# ----------------------------------------------------------------------------------------------------------
# index and loading


def finalize(cache_dir: Path) -> int:
    """Build ``index.h5`` (virtual datasets over all complete shards) and ``index.csv``.

    Virtual sources use file names relative to the index, so the cache directory can be moved.
    Video ids must be unique across shards.

    Returns:
        The number of indexed videos.
    """
    cache_dir = Path(cache_dir)
    shards = [p for p in list_shards(cache_dir) if shard_is_complete(p)]
    rows: list[tuple[str, str, int, int]] = []
    dims: dict[str, int] = {}
    counts = []
    for shard in shards:
        index = int(_SHARD_RE.match(shard.name).group(1))
        with h5py.File(shard, "r") as f:
            ids = list(f["video_id"].asstr()[...])
            classes = list(f["class_name"].asstr()[...])
            for name in ("audio_mean", "visual_mean"):
                dim = f[name].shape[1]
                if ids and dims.setdefault(name, dim) != dim:
                    raise CacheError(f"{shard}: {name} has {dim} columns, earlier shards have {dims[name]}")
        counts.append(len(ids))
        rows.extend((vid, cls, index, row) for row, (vid, cls) in enumerate(zip(ids, classes, strict=True)))
    seen: dict[str, int] = {}
    for vid, _, index, _ in rows:
        if vid in seen:
            raise CacheError(f"video id {vid!r} appears in shard {seen[vid]} and shard {index}")
        seen[vid] = index
    total = len(rows)
    tmp = cache_dir / (INDEX_H5 + ".tmp")
    with write_h5(tmp) as f:
        f.create_dataset("video_id", data=np.array([r[0] for r in rows], dtype=object), dtype=_STR)
        f.create_dataset("class_name", data=np.array([r[1] for r in rows], dtype=object), dtype=_STR)
        f.create_dataset("shard", data=np.array([r[2] for r in rows], dtype=np.int32))
        f.create_dataset("row", data=np.array([r[3] for r in rows], dtype=np.int64))
        for name, dim in dims.items():
            layout = h5py.VirtualLayout(shape=(total, dim), dtype=np.float32)
            start = 0
            for shard, n in zip(shards, counts, strict=True):
                if n:
                    source = h5py.VirtualSource(f"{SHARD_DIR}/{shard.name}", name, shape=(n, dim))
                    layout[start : start + n] = source
                start += n
            f.create_virtual_dataset(name, layout, fillvalue=np.nan)
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["num_videos"] = total
        f.attrs["complete"] = True
    fsync_file(tmp)
    crash_point(f"before-rename:{INDEX_H5}")
    os.replace(tmp, cache_dir / INDEX_H5)
    atomic_write_csv(cache_dir / INDEX_CSV, ["video_id", "class_name", "shard", "row"], rows)
    _logger.info("indexed %d videos in %d shard(s) of %s", total, len(shards), cache_dir)
    return total


def index_is_current(cache_dir: Path) -> bool:
    """Whether ``index.h5`` exists and covers exactly the complete shards present now."""
    cache_dir = Path(cache_dir)
    path = cache_dir / INDEX_H5
    if not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            indexed = set(int(s) for s in np.unique(f["shard"][...]))
            total = int(f.attrs["num_videos"])
    except (OSError, KeyError):
        return False
    present = {}
    for shard in list_shards(cache_dir):
        if shard_is_complete(shard):
            with h5py.File(shard, "r") as f:
                present[int(_SHARD_RE.match(shard.name).group(1))] = int(f.attrs["num_videos"])
    nonempty = {k for k, n in present.items() if n}
    return indexed == nonempty and total == sum(present.values())


def load_features(cache_dir: Path, video_ids: Sequence[str] | None = None) -> FeatureTable:
    """Load averaged features into memory once (never per-sample HDF5 reads).

    The index is (re)built first when it is missing or stale.

    Args:
        cache_dir: the cache directory.
        video_ids: when given, only these videos, in this order; unknown ids raise :class:`CacheError`.

    Returns:
        A :class:`FeatureTable`; ``audio`` is ``(N, D_A)`` and ``visual`` ``(N, D_V)`` float32.
    """
    cache_dir = Path(cache_dir)
    read_cache_info(cache_dir)
    if not index_is_current(cache_dir):
        # Shards reach their final name only complete (written as .tmp, renamed): one that is not was damaged
        # later. Indexing the others would silently drop its videos, so loading stops and says which file.
        broken = [p for p in list_shards(cache_dir) if not shard_is_complete(p)]
        if broken:
            raise CacheError(
                f"{broken[0]}: shard is truncated or corrupt ({len(broken)} such shard(s)); rerun avzsl-extract "
                "with the same arguments to redo it (it is detected and re-extracted), or restore it from a backup"
            )
        finalize(cache_dir)
    with h5py.File(cache_dir / INDEX_H5, "r") as f:
        ids = list(f["video_id"].asstr()[...])
        classes = list(f["class_name"].asstr()[...])
        if not ids:
            raise CacheError(f"{cache_dir}: the cache holds no videos")
        # One contiguous read per dataset through the virtual layout.
        audio = f["audio_mean"][...]
        visual = f["visual_mean"][...]
    if np.isnan(audio).any() or np.isnan(visual).any():
        raise CacheError(f"{cache_dir}: index reads missing rows (a shard was removed or corrupted); rerun finalize")
    table = FeatureTable(ids, classes, torch.from_numpy(audio), torch.from_numpy(visual))
    if video_ids is None:
        return table
    position = {vid: i for i, vid in enumerate(ids)}
    missing = [v for v in video_ids if v not in position]
    if missing:
        raise CacheError(f"{cache_dir}: {len(missing)} requested video(s) are not in the cache, e.g. {missing[:5]}")
    return table.subset([position[v] for v in video_ids])
