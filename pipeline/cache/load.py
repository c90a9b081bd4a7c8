"""Reading a finalized cache back: averaged features (:func:`load_features`) and per-window sequences
(:func:`load_sequences`), verified against the record written when the cache was finalized. Nothing here writes into
the cache: a missing, damaged or stale index is an error telling the user to rerun the extraction (which rebuilds
it). A cache that is not finalized (extraction still running, or a rank not yet done) is refused before anything is
read (:func:`check_cache_ready`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from avzsl.pipeline.cache.h5 import open_h5, read_dataset, stored_digests, verify_datasets
from avzsl.pipeline.cache.layout import (
    INDEX_H5,
    RERUN,
    FeatureTable,
    extraction_locks,
    list_shards,
    read_cache_info,
    shard_path,
)
from avzsl.pipeline.cache.shards import shard_is_complete
from avzsl.pipeline.core.checksums import array_digest
from avzsl.pipeline.core.errors import CacheError
from avzsl.pipeline.core.lock import live_owner

_logger = logging.getLogger(__name__)

_INDEX_DATASETS = ("video_id", "class_name", "shard", "row")


def check_cache_ready(cache_dir: Path, info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Refuse a cache that an extraction is still writing or that was never finalized; returns ``cache.json``.

    Raises:
        CacheError: "extraction is still running (pid ...)" while a live process holds one of the cache's
            extraction locks, or "not finalized" when ``cache.json`` lacks the ``finalized`` flag.
    """
    cache_dir = Path(cache_dir)
    info = read_cache_info(cache_dir) if info is None else info
    for lock in extraction_locks(cache_dir):
        owner = live_owner(lock)
        if owner is not None:
            raise CacheError(
                f"{cache_dir}: extraction is still running (pid {owner.get('pid')} on {owner.get('host')}, lock "
                f"{lock.name}); wait for it to finish, then run this command again"
            )
    if not info.get("finalized"):
        raise CacheError(
            f"{cache_dir}: the cache is not finalized (an extraction was stopped, or other ranks still own "
            "incomplete shards); run avzsl-extract with the same arguments (every rank) until it reports "
            "'cache complete'"
        )
    return info


def _shard_file(cache_dir: Path, index: str) -> Path:
    return shard_path(cache_dir, int(index))


def _check_shards_against_record(cache_dir: Path, record: dict[str, Any]) -> None:
    """Every shard the finalized cache held is present, complete and unchanged (cheap: attributes only)."""
    for index, expected in sorted(record["shards"].items(), key=lambda kv: int(kv[0])):
        path = _shard_file(cache_dir, index)
        if not path.exists():
            raise CacheError(
                f"{path}: shard is missing (the cache held {record['videos']} videos in {len(record['shards'])} "
                f"shard(s) when it was finalized; this one had {expected['rows']}); {RERUN}"
            )
        if not shard_is_complete(path):
            raise CacheError(f"{path}: shard is truncated or corrupt; {RERUN} (it is detected and re-extracted)")
        with open_h5(path, virtual_ok=False) as f:
            rows, digests = int(f.attrs["num_videos"]), stored_digests(f)
        if rows != expected["rows"] or any(digests.get(k) != v for k, v in expected["sha256"].items()):
            raise CacheError(f"{path}: shard changed since the cache was finalized (not in the index); {RERUN}")


def load_features(
    cache_dir: Path, video_ids: Sequence[str] | None = None, verify: bool = True
) -> FeatureTable:
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
    path = cache_dir / INDEX_H5
    if not path.exists():
        raise CacheError(f"{path}: the index is missing; {RERUN} (finalizing rebuilds it)")
    try:
        with open_h5(path) as f:
            values = _read_index(path, f, verify, record)
            if not values["video_id"]:
                raise CacheError(f"{cache_dir}: the cache holds no videos")
            # One contiguous read per dataset through the virtual layout.
            audio = f["audio_mean"][...]
            visual = f["visual_mean"][...]
    except (OSError, KeyError, UnicodeDecodeError) as exc:
        raise CacheError(f"{path}: the index is damaged ({exc}); {RERUN} (finalizing rebuilds it)") from exc
    if np.isnan(audio).any() or np.isnan(visual).any():
        raise CacheError(f"{cache_dir}: index reads missing rows (a shard was removed or corrupted); {RERUN}")
    if record is not None and verify:
        _verify_rows(cache_dir, record, values["shard"], audio, visual)
    ids, classes = values["video_id"], values["class_name"]
    table = FeatureTable(ids, classes, torch.from_numpy(audio), torch.from_numpy(visual))
    if video_ids is None:
        return table
    position = _positions(cache_dir, ids, video_ids)
    return table.subset([position[v] for v in video_ids])


def _read_index(path: Path, f: h5py.File, verify: bool, record: dict[str, Any] | None) -> dict[str, Any]:
    """The index's id, class, shard and row datasets, checked against their checksums (``verify``) and against the
    finalized content record (when the cache has one)."""
    values = {name: read_dataset(f, name) for name in _INDEX_DATASETS}
    if verify:
        verify_datasets(path, f, values, "index")
    if record is not None and stored_digests(f) != record["index_sha256"]:
        raise CacheError(f"{path}: the index does not match the finalized cache; {RERUN}")
    return values


def _positions(cache_dir: Path, ids: Sequence[str], video_ids: Sequence[str]) -> dict[str, int]:
    """Row of every cache id; unknown requested ``video_ids`` raise :class:`CacheError`."""
    position = {vid: i for i, vid in enumerate(ids)}
    missing = [v for v in video_ids if v not in position]
    if missing:
        raise CacheError(f"{cache_dir}: {len(missing)} requested video(s) are not in the cache, e.g. {missing[:5]}")
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
                raise CacheError(
                    f"{_shard_file(cache_dir, index)}: checksum mismatch in {name!r} (the file changed after it "
                    f"was written); {RERUN} (it is detected and re-extracted)"
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
    shards = list_shards(Path(cache_dir))
    if not shards:
        return False
    try:
        with open_h5(shards[0], virtual_ok=False) as f:
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
    path = cache_dir / INDEX_H5
    try:
        with open_h5(path) as f:
            values = _read_index(path, f, verify, record)
    except (OSError, KeyError, UnicodeDecodeError) as exc:
        raise CacheError(f"{path}: the index is damaged or missing ({exc}); {RERUN} (finalizing rebuilds it)"
                           ) from exc
    position = _positions(cache_dir, values["video_id"], video_ids)
    by_shard: dict[int, list[tuple[str, int]]] = {}
    for vid in dict.fromkeys(video_ids):
        i = position[vid]
        by_shard.setdefault(int(values["shard"][i]), []).append((vid, int(values["row"][i])))
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for index, wanted in sorted(by_shard.items()):
        shard = shard_path(cache_dir, index)
        if not shard_is_complete(shard):
            raise CacheError(f"{shard}: shard is missing, truncated or corrupt; {RERUN}")
        try:
            with open_h5(shard, virtual_ok=False) as f:
                if "seq_offsets" not in f:
                    raise CacheError(sequences_missing_message(
                        cache_dir, what, f" (shard {shard.name} has no 'seq_offsets')"))
                seq = {name: f[name][...] for name in _SEQ_DATASETS}
                if verify:
                    verify_datasets(shard, f, seq, "shard")
        except (OSError, KeyError) as exc:
            raise CacheError(f"{shard}: shard is damaged ({exc}); {RERUN}") from exc
        offsets = seq["seq_offsets"]
        for vid, row in wanted:
            lo, hi = int(offsets[row]), int(offsets[row + 1])
            if max_windows is not None:
                hi = min(hi, lo + max_windows)
            out[vid] = (np.array(seq["audio_seq"][lo:hi], dtype=np.float32),
                        np.array(seq["visual_seq"][lo:hi], dtype=np.float32))
        del seq
    return out
