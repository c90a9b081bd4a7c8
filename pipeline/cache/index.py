"""The cache index and loading: ``finalize`` builds ``index.h5`` over the shards and records what the cache holds;
``load_features`` reads it back, verified, and never writes into the cache.

What ``finalize`` records (``cache.json`` ``"content"``, also on ``index.h5``): the number of videos, every shard's
row count and the checksums of its ids, classes and mean features, and the checksum of the index's own datasets.
A reader compares the cache with that record, so a shard deleted, damaged or replaced since the cache was finalized
is an error naming the file instead of a cache that quietly lost rows. A cache that is not finalized (extraction
still running, or a rank not yet done) is refused before anything is read.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from avzsl.pipeline.cache import shards as C
from avzsl.pipeline.core.atomic import atomic_write_csv, fsync_file
from avzsl.pipeline.core.checksums import array_digest, strings_digest
from avzsl.pipeline.core.faults import crash_point
from avzsl.pipeline.core.lock import live_owner

_logger = logging.getLogger(__name__)

_INDEX_DATASETS = ("video_id", "class_name", "shard", "row")
_SHARD_KEYS = ("video_id", "class_name", "audio_mean", "visual_mean")


def write_cache(cache_dir: Path, videos: Sequence[C.VideoFeatures], class_table: C.ClassTable,
                info: dict[str, Any], shard_size: int) -> None:
    """Write a whole cache from features already in memory: ``cache.json``, shards of ``shard_size`` videos (each
    with its ``shard_index`` attribute), the class table, then :func:`finalize` (generators, importers, tests)."""
    C.write_cache_info(cache_dir, info)
    for index, start in enumerate(range(0, len(videos), shard_size)):
        C.write_shard(C.shard_path(cache_dir, index), videos[start : start + shard_size], {"shard_index": index})
    C.write_class_table(cache_dir, class_table)
    finalize(cache_dir)


def finalize(cache_dir: Path, mark: bool = True) -> int:
    """Build ``index.h5`` (virtual datasets over all complete shards) and ``index.csv``.

    Virtual sources use file names relative to the index, so the cache directory can be moved. Video ids must be
    unique across shards.

    Args:
        cache_dir: the cache.
        mark: also record the content and set ``finalized`` in ``cache.json`` (:func:`mark_finalized`); the
            extraction stage does that itself after writing its record lists.

    Returns:
        The number of indexed videos.
    """
    cache_dir = Path(cache_dir)
    shards = [p for p in C.list_shards(cache_dir) if C.shard_is_complete(p)]
    rows: list[tuple[str, str, int, int]] = []
    dims: dict[str, int] = {}
    counts = []
    content: dict[str, dict[str, Any]] = {}
    for shard in shards:
        index = int(C._SHARD_RE.match(shard.name).group(1))
        with h5py.File(shard, "r") as f:
            ids = list(f["video_id"].asstr()[...])
            classes = list(f["class_name"].asstr()[...])
            for name in ("audio_mean", "visual_mean"):
                dim = f[name].shape[1]
                if ids and dims.setdefault(name, dim) != dim:
                    raise C.CacheError(f"{shard}: {name} has {dim} columns, earlier shards have {dims[name]}")
            digests = C.stored_digests(f)
        content[str(index)] = {"rows": len(ids), "sha256": {k: digests[k] for k in _SHARD_KEYS if k in digests}}
        counts.append(len(ids))
        rows.extend((vid, cls, index, row) for row, (vid, cls) in enumerate(zip(ids, classes, strict=True)))
    seen: dict[str, int] = {}
    for vid, _, index, _ in rows:
        if vid in seen:
            raise C.CacheError(f"video id {vid!r} appears in shard {seen[vid]} and shard {index}")
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
    tmp = cache_dir / (C.INDEX_H5 + ".tmp")
    with C.write_h5(tmp) as f:
        for name in ("video_id", "class_name"):
            f.create_dataset(name, data=np.array(columns[name], dtype=object), dtype=C._STR)
        f.create_dataset("shard", data=columns["shard"])
        f.create_dataset("row", data=columns["row"])
        for name, dim in dims.items():
            layout = h5py.VirtualLayout(shape=(total, dim), dtype=np.float32)
            start = 0
            for shard, n in zip(shards, counts, strict=True):
                if n:
                    source = h5py.VirtualSource(f"{C.SHARD_DIR}/{shard.name}", name, shape=(n, dim))
                    layout[start : start + n] = source
                start += n
            f.create_virtual_dataset(name, layout, fillvalue=np.nan)
        f.attrs["schema_version"] = C.SCHEMA_VERSION
        f.attrs["num_videos"] = total
        f.attrs[C.DIGESTS_ATTR] = json.dumps(index_digests, sort_keys=True)
        f.attrs["content"] = json.dumps(record, sort_keys=True)
        f.attrs["complete"] = True
    fsync_file(tmp)
    crash_point(f"before-rename:{C.INDEX_H5}")
    os.replace(tmp, cache_dir / C.INDEX_H5)
    atomic_write_csv(cache_dir / C.INDEX_CSV, ["video_id", "class_name", "shard", "row"], rows)
    _logger.info("indexed %d videos in %d shard(s) of %s", total, len(shards), cache_dir)
    if mark:
        mark_finalized(cache_dir)
    return total


def mark_finalized(cache_dir: Path) -> None:
    """Set ``finalized`` in ``cache.json`` with the content record of the index just built (written last)."""
    cache_dir = Path(cache_dir)
    with h5py.File(cache_dir / C.INDEX_H5, "r") as f:
        record = json.loads(f.attrs["content"])
    info = C.read_cache_info(cache_dir)
    info["finalized"] = True
    info["content"] = record
    C.write_cache_info(cache_dir, info)


def index_is_current(cache_dir: Path) -> bool:
    """Whether ``index.h5`` exists and covers exactly the complete shards present now."""
    cache_dir = Path(cache_dir)
    path = cache_dir / C.INDEX_H5
    if not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            indexed = set(int(s) for s in np.unique(f["shard"][...]))
            total = int(f.attrs["num_videos"])
    except (OSError, KeyError):
        return False
    present = {}
    for shard in C.list_shards(cache_dir):
        if C.shard_is_complete(shard):
            with h5py.File(shard, "r") as f:
                present[int(C._SHARD_RE.match(shard.name).group(1))] = int(f.attrs["num_videos"])
    nonempty = {k for k, n in present.items() if n}
    return indexed == nonempty and total == sum(present.values())


def check_cache_ready(cache_dir: Path, info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Refuse a cache that an extraction is still writing or that was never finalized; returns ``cache.json``.

    Raises:
        CacheError: "extraction is still running (pid ...)" while a live process holds one of the cache's
            extraction locks, or "not finalized" when ``cache.json`` lacks the ``finalized`` flag.
    """
    cache_dir = Path(cache_dir)
    info = C.read_cache_info(cache_dir) if info is None else info
    for lock in sorted([*cache_dir.glob(C.RANK_LOCK_GLOB), cache_dir / C.FINALIZE_LOCK]):
        owner = live_owner(lock)
        if owner is not None:
            raise C.CacheError(
                f"{cache_dir}: extraction is still running (pid {owner.get('pid')} on {owner.get('host')}, lock "
                f"{lock.name}); wait for it to finish, then run this command again"
            )
    if not info.get("finalized"):
        raise C.CacheError(
            f"{cache_dir}: the cache is not finalized (an extraction was stopped, or other ranks still own "
            "incomplete shards); run avzsl-extract with the same arguments (every rank) until it reports "
            "'cache complete'"
        )
    return info


def _shard_file(cache_dir: Path, index: str) -> Path:
    return C.shard_path(cache_dir, int(index))


def _check_shards_against_record(cache_dir: Path, record: dict[str, Any]) -> None:
    """Every shard the finalized cache held is present, complete and unchanged (cheap: attributes only)."""
    for index, expected in sorted(record["shards"].items(), key=lambda kv: int(kv[0])):
        path = _shard_file(cache_dir, index)
        if not path.is_file():
            raise C.CacheError(
                f"{path}: shard is missing (the cache held {record['videos']} videos in {len(record['shards'])} "
                f"shard(s) when it was finalized; this one had {expected['rows']}); {C.RERUN}"
            )
        if not C.shard_is_complete(path):
            raise C.CacheError(f"{path}: shard is truncated or corrupt; {C.RERUN} (it is detected and re-extracted)")
        with h5py.File(path, "r") as f:
            rows, digests = int(f.attrs["num_videos"]), C.stored_digests(f)
        if rows != expected["rows"] or any(digests.get(k) != v for k, v in expected["sha256"].items()):
            raise C.CacheError(f"{path}: shard changed since the cache was finalized (not in the index); {C.RERUN}")


def load_features(
    cache_dir: Path, video_ids: Sequence[str] | None = None, verify: bool = True
) -> C.FeatureTable:
    """Load averaged features into memory once (never per-sample HDF5 reads), verified against their checksums.

    Nothing is written: a missing, damaged or stale index is an error telling the user to rerun the extraction
    (which rebuilds it).

    Args:
        cache_dir: the cache directory.
        video_ids: when given, only these videos, in this order; unknown ids raise :class:`CacheError`.
        verify: compare what is read with the checksums (off only to measure their cost: ``bench/checksum_cost.py``;
            the shard list, row counts and the finalized flag are checked either way).

    Returns:
        A :class:`FeatureTable`; ``audio`` is ``(N, D_A)`` and ``visual`` ``(N, D_V)`` float32.
    """
    cache_dir = Path(cache_dir)
    info = check_cache_ready(cache_dir)
    record = info.get("content")
    if record is None:
        _logger.warning("%s was finalized by an older avzsl without a content record: not verified", cache_dir)
    else:
        _check_shards_against_record(cache_dir, record)
    path = cache_dir / C.INDEX_H5
    if not path.is_file():
        raise C.CacheError(f"{path}: the index is missing; {C.RERUN} (finalizing rebuilds it)")
    try:
        with h5py.File(path, "r") as f:
            values = _read_index(path, f, verify, record)
            if not values["video_id"]:
                raise C.CacheError(f"{cache_dir}: the cache holds no videos")
            # One contiguous read per dataset through the virtual layout.
            audio = f["audio_mean"][...]
            visual = f["visual_mean"][...]
    except (OSError, KeyError, UnicodeDecodeError) as exc:
        raise C.CacheError(f"{path}: the index is damaged ({exc}); {C.RERUN} (finalizing rebuilds it)") from exc
    if np.isnan(audio).any() or np.isnan(visual).any():
        raise C.CacheError(f"{cache_dir}: index reads missing rows (a shard was removed or corrupted); {C.RERUN}")
    if record is not None and verify:
        _verify_rows(cache_dir, record, values["shard"], audio, visual)
    ids, classes = values["video_id"], values["class_name"]
    table = C.FeatureTable(ids, classes, torch.from_numpy(audio), torch.from_numpy(visual))
    if video_ids is None:
        return table
    position = _positions(cache_dir, ids, video_ids)
    return table.subset([position[v] for v in video_ids])


def _read_index(path: Path, f: h5py.File, verify: bool, record: dict[str, Any] | None) -> dict[str, Any]:
    """The index's id, class, shard and row datasets, checked against their checksums (``verify``) and against the
    finalized content record (when the cache has one)."""
    values = {name: C._read_dataset(f, name) for name in _INDEX_DATASETS}
    if verify:
        C.verify_datasets(path, f, values, "index")
    if record is not None and C.stored_digests(f) != record["index_sha256"]:
        raise C.CacheError(f"{path}: the index does not match the finalized cache; {C.RERUN}")
    return values


def _positions(cache_dir: Path, ids: Sequence[str], video_ids: Sequence[str]) -> dict[str, int]:
    """Row of every cache id; unknown requested ``video_ids`` raise :class:`CacheError`."""
    position = {vid: i for i, vid in enumerate(ids)}
    missing = [v for v in video_ids if v not in position]
    if missing:
        raise C.CacheError(f"{cache_dir}: {len(missing)} requested video(s) are not in the cache, e.g. {missing[:5]}")
    return position


def _verify_rows(cache_dir: Path, record: dict[str, Any], shard_of_row: np.ndarray, *features: np.ndarray) -> None:
    """Compare each shard's rows of the loaded ``(N, D)`` features with the checksums its shard was written with."""
    shards = sorted(record["shards"].items(), key=lambda kv: int(kv[0]))  # JSON keys sort as text: "10" < "2"
    starts = np.searchsorted(shard_of_row, [int(k) for k, _ in shards], side="left")
    for (index, expected), start in zip(shards, starts, strict=True):
        n = int(expected["rows"])
        if not n:
            continue
        for name, data in zip(("audio_mean", "visual_mean"), features, strict=True):
            digest = expected["sha256"].get(name)
            if digest is not None and array_digest(data[start : start + n]) != digest:
                raise C.CacheError(
                    f"{_shard_file(cache_dir, index)}: checksum mismatch in {name!r} (the file changed after it "
                    f"was written); {C.RERUN} (it is detected and re-extracted)"
                )


def sequences_missing_message(cache_dir: Path, what: str, detail: str = "") -> str:
    """The one-line refusal of a cache without per-window sequences, saying how to get a cache with them."""
    return (
        f"{cache_dir}: {what} needs per-window sequences, but this cache stores only per-video mean features"
        f"{detail}; extract the cache again without --no-sequences (avzsl-extract keeps them by default), or write "
        "a synthetic cache with them: avzsl-synth --windows N"
    )


def cache_has_sequences(cache_dir: Path) -> bool:
    """Whether the cache's shards store per-window sequences (``seq_offsets`` in its first shard; the shards of one
    extraction all have them or none does). Opens the first shard only and reads no features."""
    shards = C.list_shards(Path(cache_dir))
    if not shards:
        return False
    try:
        with h5py.File(shards[0], "r") as f:
            return "seq_offsets" in f
    except OSError:
        return False


_SEQ_DATASETS = ("seq_offsets", "audio_seq", "visual_seq")


def load_sequences(
    cache_dir: Path, video_ids: Sequence[str], max_windows: int | None = None, verify: bool = True,
    what: str = "this method",
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-window features of ``video_ids``, read shard by shard and verified against the shards' checksums.

    Every shard holding one of the videos is read once: its ``seq_offsets``, ``audio_seq`` and ``visual_seq`` in
    full (the checksums cover whole datasets), of which only the requested videos' windows are kept (copied), so
    memory beyond the result is one shard's sequences at a time.

    Args:
        cache_dir: a finalized cache (:func:`check_cache_ready`).
        video_ids: cache ids; unknown ids raise :class:`CacheError`.
        max_windows: keep only the first ``max_windows`` windows of each video; None keeps all.
        verify: compare what is read with the checksums stored in the shards.
        what: who needs the sequences, for the refusal message (e.g. ``"method 'tcaf'"``).

    Returns:
        ``{video_id: (audio (T_i, D_A), visual (T_i, D_V))}`` float32 arrays, ``T_i <= max_windows``.

    Raises:
        CacheError: the cache is not finalized, a shard lacks sequences (the message says how to get them), or a
            file is damaged.
    """
    cache_dir = Path(cache_dir)
    record = check_cache_ready(cache_dir).get("content")
    if max_windows is not None and max_windows < 1:
        raise ValueError(f"max_windows must be >= 1 or None, not {max_windows!r}")
    path = cache_dir / C.INDEX_H5
    try:
        with h5py.File(path, "r") as f:
            values = _read_index(path, f, verify, record)
    except (OSError, KeyError, UnicodeDecodeError) as exc:
        raise C.CacheError(f"{path}: the index is damaged or missing ({exc}); {C.RERUN} (finalizing rebuilds it)"
                           ) from exc
    position = _positions(cache_dir, values["video_id"], video_ids)
    by_shard: dict[int, list[tuple[str, int]]] = {}
    for vid in dict.fromkeys(video_ids):
        i = position[vid]
        by_shard.setdefault(int(values["shard"][i]), []).append((vid, int(values["row"][i])))
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for index, wanted in sorted(by_shard.items()):
        shard = C.shard_path(cache_dir, index)
        if not C.shard_is_complete(shard):
            raise C.CacheError(f"{shard}: shard is missing, truncated or corrupt; {C.RERUN}")
        try:
            with h5py.File(shard, "r") as f:
                if "seq_offsets" not in f:
                    raise C.CacheError(sequences_missing_message(
                        cache_dir, what, f" (shard {shard.name} has no 'seq_offsets')"))
                seq = {name: f[name][...] for name in _SEQ_DATASETS}
                if verify:
                    C.verify_datasets(shard, f, seq, "shard")
        except (OSError, KeyError) as exc:
            raise C.CacheError(f"{shard}: shard is damaged ({exc}); {C.RERUN}") from exc
        offsets = seq["seq_offsets"]
        for vid, row in wanted:
            lo, hi = int(offsets[row]), int(offsets[row + 1])
            if max_windows is not None:
                hi = min(hi, lo + max_windows)
            out[vid] = (np.array(seq["audio_seq"][lo:hi], dtype=np.float32),
                        np.array(seq["visual_seq"][lo:hi], dtype=np.float32))
        del seq
    return out
