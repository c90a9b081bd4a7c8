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

from avzsl.pipeline.core.atomic import atomic_write_text, fsync_file, remove_temporaries
from avzsl.pipeline.core.checksums import array_digest, strings_digest
from avzsl.pipeline.core.errors import CacheError  # noqa: F401 - defined there so CLIs catch it without torch
from avzsl.pipeline.core.faults import crash_point
from avzsl.pipeline.core.filenames import escape_name

_logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CACHE_INFO = "cache.json"
CLASS_TABLE = "classes.h5"
INDEX_H5 = "index.h5"
INDEX_CSV = "index.csv"
SHARD_DIR = "shards"
_SHARD_RE = re.compile(r"^shard-(\d{5,})\.h5$")
_STR = h5py.string_dtype(encoding="utf-8")
DIGESTS_ATTR = "sha256"  # JSON {dataset name: SHA-256 of its content}, on shards, the class table and the index
FINALIZE_LOCK = ".avzsl.finalize.lock"
RANK_LOCK_GLOB = ".avzsl.lock.rank*of*"
RERUN = "rerun avzsl-extract with the same arguments (avzsl-import for an imported cache) to redo it"
_STRING_DATASETS = ("video_id", "class_name", "name", "phrase", "video_records", "provenance")


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
            digests: dict[str, str] = {}
            _put_strings(f, "video_id", [v.video_id for v in videos], digests)
            _put_strings(f, "class_name", [v.class_name for v in videos], digests)
            for name in ("audio_mean", "visual_mean"):
                rows = [np.asarray(getattr(v, name), dtype=np.float32) for v in videos]
                dim = rows[0].shape[0] if rows else 0
                data = np.stack(rows) if rows else np.zeros((0, dim), np.float32)
                f.create_dataset(name, data=data, chunks=(max(1, min(n, 512)), dim) if n else None)
                digests[name] = array_digest(data)
            if videos and all(with_seq):
                lengths = np.array([v.audio_seq.shape[0] for v in videos], dtype=np.int64)
                seq = {
                    "seq_offsets": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
                    "audio_seq": np.concatenate([v.audio_seq for v in videos]).astype(np.float32),
                    "visual_seq": np.concatenate([v.visual_seq for v in videos]).astype(np.float32),
                    "window_sec": np.concatenate([v.window_sec for v in videos]).astype(np.float32),
                }
                for name, data in seq.items():
                    f.create_dataset(name, data=data)
                    digests[name] = array_digest(data)
            if video_records is not None:
                # JSON escapes lone surrogates (non-UTF-8 file names), so the records keep the exact names.
                text = json.dumps(list(video_records), sort_keys=True)
                f.create_dataset("video_records", data=text, dtype=_STR)
                digests["video_records"] = strings_digest([text])
            for key, value in attrs.items():
                f.attrs[key] = json.dumps(value) if isinstance(value, dict | list) else value
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["num_videos"] = n
            f.attrs[DIGESTS_ATTR] = json.dumps(digests, sort_keys=True)
            f.flush()
            f.attrs["complete"] = True
        fsync_file(tmp)
        crash_point(f"before-rename:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _put_strings(f: h5py.File, name: str, values: list[str], digests: dict[str, str]) -> None:
    """A UTF-8 string dataset (non-UTF-8 file-name bytes escaped as ``\\xNN``) and its digest."""
    values = [escape_name(v) for v in values]
    f.create_dataset(name, data=np.array(values, dtype=object), dtype=_STR)
    digests[name] = strings_digest(values)


def _read_dataset(f: h5py.File, name: str) -> Any:
    """A dataset's content as its digest sees it: a list of str for string datasets, else an array."""
    if name in _STRING_DATASETS:
        data = f[name]
        return [data.asstr()[()]] if data.shape == () else list(data.asstr()[...])
    return f[name][...]


def _digest_of(name: str, value: Any) -> str:
    return strings_digest(value) if name in _STRING_DATASETS else array_digest(value)


def stored_digests(f: h5py.File) -> dict[str, str]:
    """The per-dataset digests written with an HDF5 file (empty for files of older avzsl versions)."""
    raw = f.attrs.get(DIGESTS_ATTR)
    if raw is None:
        return {}
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def verify_datasets(path: Path, f: h5py.File, values: dict[str, Any], what: str) -> None:
    """Compare already-read dataset contents with the digests stored in ``f``; raises naming the file."""
    digests = stored_digests(f)
    for name, value in values.items():
        if name in digests and _digest_of(name, value) != digests[name]:
            raise CacheError(
                f"{path}: {what} checksum mismatch in {name!r} (the file changed after it was written); {RERUN}"
            )


def shard_is_complete(path: Path, verify: bool = False) -> bool:
    """True only if the shard opens, carries ``complete`` and its datasets agree in length.

    With ``verify`` every dataset is read and compared with the checksums written with it (a bit flip anywhere in
    the data makes the shard incomplete).
    """
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
            if verify:
                digests = stored_digests(f)
                return all(_digest_of(name, _read_dataset(f, name)) == d for name, d in digests.items())
            return True
    except (OSError, KeyError, ValueError, UnicodeDecodeError):
        return False


def read_shard(path: Path, with_sequences: bool = False) -> list[VideoFeatures]:
    """Read every video of a complete shard (sequences only when asked)."""
    if not shard_is_complete(path):
        raise CacheError(f"{path}: shard is incomplete or corrupt")
    with h5py.File(path, "r") as f:
        names = ["video_id", "class_name", "audio_mean", "visual_mean"]
        if with_sequences and "seq_offsets" in f:
            names += ["seq_offsets", "audio_seq", "visual_seq", "window_sec"]
        try:
            values = {name: _read_dataset(f, name) for name in names}
        except (OSError, UnicodeDecodeError) as exc:
            raise CacheError(f"{path}: shard is damaged ({exc}); {RERUN}") from exc
        verify_datasets(path, f, values, "shard")
        ids, classes = values["video_id"], values["class_name"]
        audio, visual = values["audio_mean"], values["visual_mean"]
        seq = None
        if "seq_offsets" in values:
            seq = (values["seq_offsets"], values["audio_seq"], values["visual_seq"], values["window_sec"])
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
        values = {"video_records": _read_dataset(f, "video_records")}
        verify_datasets(path, f, values, "shard")
    return json.loads(values["video_records"][0])


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
        digests: dict[str, str] = {}
        _put_strings(f, "name", list(table.names), digests)
        _put_strings(f, "phrase", list(table.phrases), digests)
        embeddings = table.embeddings.astype(np.float32)
        f.create_dataset("embedding", data=embeddings)
        digests["embedding"] = array_digest(embeddings)
        provenance = json.dumps(table.provenance, sort_keys=True)
        f.attrs["provenance"] = provenance
        digests["provenance"] = strings_digest([provenance])
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs[DIGESTS_ATTR] = json.dumps(digests, sort_keys=True)
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
            values = {name: _read_dataset(f, name) for name in ("name", "phrase", "embedding")}
            provenance = f.attrs.get("provenance", "{}")
            values["provenance"] = [provenance.decode() if isinstance(provenance, bytes) else provenance]
            verify_datasets(path, f, values, "class table")
            return ClassTable(
                names=values["name"],
                phrases=values["phrase"],
                embeddings=values["embedding"],
                provenance=json.loads(values["provenance"][0]),
            )
    except (OSError, KeyError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CacheError(f"{path}: corrupt class table ({exc}); {RERUN}") from exc
