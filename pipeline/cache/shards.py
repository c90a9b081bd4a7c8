"""Shards: HDF5 files of row-aligned per-video features, written atomically, checked and read back verified.

A shard carries ``attrs["complete"]`` (set last) and the checksums of its datasets; a reader trusts it only when it
opens, is complete and its datasets agree in length (:func:`shard_is_complete`). Layout in ``docs/cache_format.md``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avzsl.pipeline.cache.h5 import (
    DIGESTS_ATTR,
    STRING_DTYPE,
    digest_of,
    open_h5,
    put_strings,
    read_dataset,
    stored_digests,
    verify_datasets,
    write_h5_atomically,
)
from avzsl.pipeline.cache.layout import IDENTITY_KEY, RERUN, SCHEMA_VERSION, VideoFeatures, stats_path
from avzsl.pipeline.core.atomic import atomic_write_text
from avzsl.pipeline.core.checksums import array_digest, strings_digest
from avzsl.pipeline.core.errors import CacheError


def write_shard(
    path: Path,
    videos: Sequence[VideoFeatures],
    attrs: dict[str, Any],
    video_records: Sequence[dict[str, Any]] | None = None,
) -> None:
    """Write one shard atomically (:func:`~avzsl.pipeline.cache.h5.write_h5_atomically`), ``attrs["complete"]`` last.

    Args:
        path: final shard path (``shard-XXXXX.h5``).
        videos: the shard's videos, in row order. All must have sequences or none.
        attrs: JSON-serialisable attributes stored on the file root (encoder spec hash, shard index, ...).
        video_records: what happened to every input video of the shard, failures included (status, reason,
            probe metadata); stored as JSON so the shard alone says which videos it holds and why others are absent.
    """
    path = Path(path)
    with_seq = [v.audio_seq is not None for v in videos]
    if any(with_seq) and not all(with_seq):
        raise ValueError(f"{path}: either every video of a shard has per-window sequences or none has")
    with write_h5_atomically(path) as f:
        n = len(videos)
        digests: dict[str, str] = {}
        put_strings(f, "video_id", [v.video_id for v in videos], digests)
        put_strings(f, "class_name", [v.class_name for v in videos], digests)
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
            f.create_dataset("video_records", data=text, dtype=STRING_DTYPE)
            digests["video_records"] = strings_digest([text])
        for key, value in attrs.items():
            f.attrs[key] = json.dumps(value) if isinstance(value, dict | list) else value
        f.attrs["schema_version"] = SCHEMA_VERSION
        f.attrs["num_videos"] = n
        f.attrs[DIGESTS_ATTR] = json.dumps(digests, sort_keys=True)
        f.flush()
        f.attrs["complete"] = True


def shard_is_complete(path: Path, verify: bool = False) -> bool:
    """True only if the shard opens, carries ``complete`` and its datasets agree in length.

    With ``verify`` every dataset is read and compared with the checksums written with it (a bit flip anywhere in
    the data makes the shard incomplete).
    """
    try:
        with open_h5(path, virtual_ok=False) as f:
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
                return all(digest_of(name, read_dataset(f, name)) == d for name, d in digests.items())
            return True
    except (OSError, KeyError, ValueError, UnicodeDecodeError):
        return False


def shard_identity(path: Path) -> str | None:
    """The identity digest of the extraction that wrote shard ``path`` (``attrs["identity_sha256"]``); None for a
    shard written without one (by ``write_cache``, or by an avzsl that did not record it)."""
    with open_h5(path, virtual_ok=False) as f:
        value = f.attrs.get(IDENTITY_KEY)
    return None if value is None else str(value.decode() if isinstance(value, bytes) else value)


def of_extraction(path: Path, identity: str | None, accept_unrecorded: bool) -> bool:
    """Whether shard ``path`` was written by the extraction whose identity digest is ``identity`` (None: any).

    A shard without a recorded identity counts only when ``accept_unrecorded`` (the cache's ``cache.json`` records
    none either, so it was never replaced by an extraction of this avzsl: :func:`~.layout.recorded_identity`).
    """
    if identity is None:
        return True
    recorded = shard_identity(path)
    return recorded == identity or (recorded is None and accept_unrecorded)


def read_shard(path: Path, with_sequences: bool = False) -> list[VideoFeatures]:
    """Read every video of a complete shard (sequences only when asked)."""
    if not shard_is_complete(path):
        raise CacheError(f"{path}: shard is incomplete or corrupt")
    with open_h5(path, virtual_ok=False) as f:
        names = ["video_id", "class_name", "audio_mean", "visual_mean"]
        if with_sequences and "seq_offsets" in f:
            names += ["seq_offsets", "audio_seq", "visual_seq", "window_sec"]
        try:
            values = {name: read_dataset(f, name) for name in names}
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
    with open_h5(path, virtual_ok=False) as f:
        if "video_records" not in f:
            return []
        values = {"video_records": read_dataset(f, "video_records")}
        verify_datasets(path, f, values, "shard")
    return json.loads(values["video_records"][0])


def read_shard_attrs(path: Path) -> dict[str, Any]:
    """Root attributes of a shard, JSON values decoded."""
    with open_h5(path, virtual_ok=False) as f:
        out: dict[str, Any] = {}
        for key, value in f.attrs.items():
            if isinstance(value, str) and value[:1] in "[{":
                with contextlib.suppress(json.JSONDecodeError):
                    value = json.loads(value)
            out[key] = value.item() if isinstance(value, np.generic) else value
        return out


def write_shard_stats(cache_dir: Path, index: int, stats: dict[str, Any]) -> None:
    """Write the stats file of shard ``index`` atomically (after the shard itself: derived, never trusted)."""
    atomic_write_text(stats_path(cache_dir, index), json.dumps(stats, indent=2, sort_keys=True) + "\n")
