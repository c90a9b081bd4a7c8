"""Finalizing a cache: ``index.h5`` over the shards, ``index.csv``, and the record of what the cache holds; and the
finalize of an extraction (:func:`finalize_cache`: class table, index, manifest and failure lists).

What ``finalize`` records (``cache.json`` ``"content"``, also on ``index.h5``): the number of videos, every shard's
row count and the checksums of its ids, classes and mean features, and the checksum of the index's own datasets.
A reader compares the cache with that record (:mod:`avzsl.pipeline.cache.load`), so a shard deleted, damaged or
replaced since the cache was finalized is an error naming the file instead of a cache that quietly lost rows.
``finalized`` is set in ``cache.json`` last (:func:`mark_finalized`): a reader trusts the cache only from then on.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avzsl.pipeline.cache.classes import write_class_table
from avzsl.pipeline.cache.h5 import DIGESTS_ATTR, STRING_DTYPE, open_h5, stored_digests, write_h5_atomically
from avzsl.pipeline.cache.layout import (
    CACHE_INFO,
    FAILURES_CSV,
    FINALIZE_LOCK,
    FINALIZE_OUTPUTS,
    INDEX_CSV,
    INDEX_H5,
    MANIFEST_CSV,
    RECORD_FIELDS,
    SCHEMA_VERSION,
    SHARD_DIR,
    ClassTable,
    VideoFeatures,
    legacy_temporary,
    list_shards,
    read_cache_info,
    recorded_identity,
    shard_index,
    shard_path,
    write_cache_info,
)
from avzsl.pipeline.cache.shards import of_extraction, read_video_records, shard_is_complete, write_shard
from avzsl.pipeline.core.atomic import atomic_write_csv, temporaries_of
from avzsl.pipeline.core.checksums import array_digest, strings_digest
from avzsl.pipeline.core.errors import CacheError
from avzsl.pipeline.core.faults import crash_point
from avzsl.pipeline.core.lock import DirectoryLock, LockedError

_logger = logging.getLogger(__name__)

_SHARD_KEYS = ("video_id", "class_name", "audio_mean", "visual_mean")


def write_cache(cache_dir: Path, videos: Iterable[VideoFeatures], class_table: ClassTable,
                info: dict[str, Any], shard_size: int) -> None:
    """Write a whole cache: ``cache.json``, shards of ``shard_size`` videos (each with its ``shard_index``
    attribute), the class table, then :func:`finalize` (generators, importers, tests). ``videos`` may be a
    generator: one shard of them is held at a time."""
    write_cache_info(cache_dir, info)
    stream = iter(videos)
    for index in itertools.count():
        chunk = list(itertools.islice(stream, shard_size))
        if not chunk:
            break
        write_shard(shard_path(cache_dir, index), chunk, {"shard_index": index})
    write_class_table(cache_dir, class_table)
    finalize(cache_dir)


def finalize(cache_dir: Path, mark: bool = True, identity: str | None = None) -> int:
    """Build ``index.h5`` (virtual datasets over all complete shards) and ``index.csv``.

    Virtual sources use file names relative to the index, so the cache directory can be moved. Video ids must be
    unique across shards.

    Args:
        cache_dir: the cache.
        mark: also record the content and set ``finalized`` in ``cache.json`` (:func:`mark_finalized`); the
            extraction stage does that itself after writing its record lists.
        identity: index only the shards of the extraction with this identity digest (None: every complete shard).

    Returns:
        The number of indexed videos.
    """
    cache_dir = Path(cache_dir)
    accept_unrecorded = recorded_identity(cache_dir) is None
    shards = [p for p in list_shards(cache_dir)
              if shard_is_complete(p) and of_extraction(p, identity, accept_unrecorded)]
    rows: list[tuple[str, str, int, int]] = []
    dims: dict[str, int] = {}
    counts = []
    content: dict[str, dict[str, Any]] = {}
    for shard in shards:
        index = shard_index(shard)
        with open_h5(shard, virtual_ok=False) as f:
            ids = list(f["video_id"].asstr()[...])
            classes = list(f["class_name"].asstr()[...])
            for name in ("audio_mean", "visual_mean"):
                dim = f[name].shape[1]
                if ids and dims.setdefault(name, dim) != dim:
                    raise CacheError(f"{shard}: {name} has {dim} columns, earlier shards have {dims[name]}")
            digests = stored_digests(f)
        content[str(index)] = {"rows": len(ids), "sha256": {k: digests[k] for k in _SHARD_KEYS if k in digests}}
        counts.append(len(ids))
        rows.extend((vid, cls, index, row) for row, (vid, cls) in enumerate(zip(ids, classes, strict=True)))
    seen: dict[str, int] = {}
    for vid, _, index, _ in rows:
        if vid in seen:
            raise CacheError(f"video id {vid!r} appears in shard {seen[vid]} and shard {index}")
        seen[vid] = index
    total = len(rows)
    columns = {
        "video_id": [r[0] for r in rows],
        "class_name": [r[1] for r in rows],
        "shard": np.array([r[2] for r in rows], dtype=np.int32),
        "row": np.array([r[3] for r in rows], dtype=np.int64),
    }
    index_digests = {k: strings_digest(v) if isinstance(v, list) else array_digest(v) for k, v in columns.items()}
    record = {"videos": total, "shards": content, "index_sha256": index_digests}
    with write_h5_atomically(cache_dir / INDEX_H5) as f:
        for name in ("video_id", "class_name"):
            f.create_dataset(name, data=np.array(columns[name], dtype=object), dtype=STRING_DTYPE)
        f.create_dataset("shard", data=columns["shard"])
        f.create_dataset("row", data=columns["row"])
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
        f.attrs[DIGESTS_ATTR] = json.dumps(index_digests, sort_keys=True)
        f.attrs["content"] = json.dumps(record, sort_keys=True)
        f.attrs["complete"] = True
    atomic_write_csv(cache_dir / INDEX_CSV, ["video_id", "class_name", "shard", "row"], rows)
    _logger.info("indexed %d videos in %d shard(s) of %s", total, len(shards), cache_dir)
    if mark:
        mark_finalized(cache_dir)
    return total


def mark_finalized(cache_dir: Path) -> None:
    """Set ``finalized`` in ``cache.json`` with the content record of the index just built (written last)."""
    cache_dir = Path(cache_dir)
    with open_h5(cache_dir / INDEX_H5) as f:
        record = json.loads(f.attrs["content"])
    info = read_cache_info(cache_dir)
    info["finalized"] = True
    info["content"] = record
    write_cache_info(cache_dir, info)


def index_is_current(cache_dir: Path) -> bool:
    """Whether ``index.h5`` exists and covers exactly the complete shards present now."""
    cache_dir = Path(cache_dir)
    path = cache_dir / INDEX_H5
    if not path.exists():
        return False
    try:
        with open_h5(path) as f:
            indexed = set(int(s) for s in np.unique(f["shard"][...]))
            total = int(f.attrs["num_videos"])
    except (OSError, KeyError):
        return False
    present = {}
    for shard in list_shards(cache_dir):
        if shard_is_complete(shard):
            with open_h5(shard, virtual_ok=False) as f:
                present[shard_index(shard)] = int(f.attrs["num_videos"])
    nonempty = {k for k, n in present.items() if n}
    return indexed == nonempty and total == sum(present.values())


def all_shards_complete(cache_dir: Path, num_shards: int, identity: str | None = None) -> bool:
    """Whether every planned shard exists, is complete and (given ``identity``) was written by that extraction."""
    accept_unrecorded = recorded_identity(cache_dir) is None
    return all(shard_is_complete(shard_path(cache_dir, i))
               and of_extraction(shard_path(cache_dir, i), identity, accept_unrecorded) for i in range(num_shards))


def finalize_cache(
    cache_dir: Path, num_shards: int, class_table: ClassTable, identity: str | None = None
) -> dict[str, Any] | None:
    """Build the index, class table, manifest and failure list once all ``num_shards`` shards are complete.

    Several extraction ranks may finish at once: a finalize lock lets one of them do it; the others return None.
    With ``identity`` (the extraction's identity digest), a shard another extraction wrote counts as not complete
    (a rank whose ``--overwrite`` replaced the extraction never finalizes the other ranks' old shards).

    Returns:
        ``{"videos": input videos, "indexed": videos in the index, "statuses": {status: count}}``, or None when a
        shard is not complete yet or another process is finalizing.
    """
    cache_dir = Path(cache_dir)
    if not all_shards_complete(cache_dir, num_shards, identity):
        return None
    try:
        lock = DirectoryLock(cache_dir, "cache (finalize)", name=FINALIZE_LOCK)
        lock.acquire()
    except LockedError:
        _logger.info("another process is finalizing %s", cache_dir)
        return None
    try:
        crash_point("extract-finalize")
        _remove_finalize_leftovers(cache_dir)
        records = [r for i in range(num_shards) for r in read_video_records(shard_path(cache_dir, i))]
        write_class_table(cache_dir, class_table)
        total = finalize(cache_dir, mark=False, identity=identity)
        _write_records_csv(cache_dir / MANIFEST_CSV, records)
        _write_records_csv(cache_dir / FAILURES_CSV, [r for r in records if r["status"] != "ok"])
        mark_finalized(cache_dir)  # last: a reader trusts the cache only from here on
        counts = Counter(r["status"] for r in records)
        return {"videos": len(records), "indexed": total, "statuses": dict(counts)}
    finally:
        lock.release()


def _remove_finalize_leftovers(cache_dir: Path) -> None:
    """Delete temporary files a killed finalize left (caller holds the finalize lock).

    Only finalize writes the index, class table and record lists, so their temporaries are all stale here. Ranks
    starting up write ``cache.json`` only when it is absent or different, which cannot be the case while every shard
    is complete and being finalized, so its temporaries are stale too.
    """
    for name in (*FINALIZE_OUTPUTS, CACHE_INFO):
        path = cache_dir / name
        for tmp in [legacy_temporary(path), *temporaries_of(path)]:
            if tmp.is_file():
                _logger.info("removing %s left by an interrupted finalize", tmp.name)
                tmp.unlink(missing_ok=True)


def _write_records_csv(path: Path, records: Sequence[dict[str, Any]]) -> None:
    atomic_write_csv(path, RECORD_FIELDS, ([r.get(k) for k in RECORD_FIELDS] for r in records))
