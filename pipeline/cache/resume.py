"""Picking up a cache that an earlier run left: which shards to (re)write, and what leftovers to delete.

Every function here deletes or rewrites files, so the caller holds the lock of what it touches: an extraction
rank's lock for the shards it owns (:func:`shards_to_extract`, :func:`discard_extraction`), the cache's lock for
:func:`remove_temporary_files`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from avzsl.pipeline.cache.layout import (
    FINALIZE_OUTPUTS,
    SHARD_DIR,
    legacy_temporary,
    list_shards,
    shard_index,
    shard_path,
    shard_stats_path,
    stats_path,
)
from avzsl.pipeline.cache.shards import read_video_records, shard_is_complete, write_shard_stats
from avzsl.pipeline.core.atomic import remove_temporaries, temporaries_of

_logger = logging.getLogger(__name__)


def remove_temporary_files(cache_dir: Path) -> list[Path]:
    """Delete leftovers of interrupted writes (``*.tmp``) and return what was removed (caller holds the lock)."""
    removed = remove_temporaries(Path(cache_dir)) + remove_temporaries(Path(cache_dir) / SHARD_DIR)
    if removed:
        _logger.info("removed %d temporary file(s) left by an interrupted run", len(removed))
    return removed


def remove_shard_temporaries(cache_dir: Path, indices: Iterable[int]) -> None:
    """Delete the temporary files interrupted writes of shards ``indices`` (and of their stats) left.

    Only the owner of a shard writes its names, so its leftovers can be removed without touching other ranks'.
    """
    for i in indices:
        shard = shard_path(cache_dir, i)
        for tmp in [legacy_temporary(shard), *temporaries_of(shard), *temporaries_of(shard_stats_path(shard))]:
            if tmp.exists():
                _logger.info("removing %s left by an interrupted run", tmp.name)
                tmp.unlink()


def shards_to_extract(
    cache_dir: Path, owned: Sequence[int], changed_inputs: Callable[[list[dict[str, Any]]], list[str]]
) -> list[int]:
    """Prepare a rerun over the shards ``owned`` and return those to extract (again), sorted.

    In order: temporary leftovers of the owned shards are deleted; a shard is redone when it is missing, truncated
    or fails its checksums (every dataset is read, so a bit flip since it was written is redone too), or when
    ``changed_inputs(records)`` names input videos that changed since it was extracted; a complete shard whose
    stats file is missing (killed between the shard's rename and its stats) gets its stats back from its records.

    Args:
        cache_dir: the cache.
        owned: indices of the shards this process owns.
        changed_inputs: descriptions of the inputs of a shard's video records that changed (empty: none).
    """
    remove_shard_temporaries(cache_dir, owned)
    todo = [i for i in owned if not shard_is_complete(shard_path(cache_dir, i), verify=True)]
    for i in todo:
        if shard_path(cache_dir, i).exists():
            _logger.warning("%s is truncated or corrupt: extracting it again", shard_path(cache_dir, i).name)
    records: dict[int, list[dict[str, Any]]] = {}
    for i in owned:
        if i in todo:
            continue
        records[i] = read_video_records(shard_path(cache_dir, i))
        changed = changed_inputs(records[i])
        if changed:
            _logger.warning(
                "%s: %d input video(s) changed since they were extracted (%s): extracting it again",
                shard_path(cache_dir, i).name,
                len(changed),
                "; ".join(changed[:3]),
            )
            todo.append(i)
    todo.sort()
    for i in owned:
        if i not in todo and not stats_path(cache_dir, i).is_file():
            # The shard is complete and the stats are derived from it.
            failures = Counter(r["status"] for r in records[i] if r["status"] != "ok")
            stats = {"shard": i, "videos": len(records[i]), "failures": dict(failures), "recovered": True}
            write_shard_stats(cache_dir, i, stats)
    return todo


def discard_extraction(cache_dir: Path, owns: Callable[[int], bool]) -> None:
    """Delete the shards ``owns(index)`` selects with their stats, and everything finalize wrote (start afresh)."""
    cache_dir = Path(cache_dir)
    for shard in list_shards(cache_dir):
        if owns(shard_index(shard)):
            shard.unlink()
            shard_stats_path(shard).unlink(missing_ok=True)
    for name in FINALIZE_OUTPUTS:
        (cache_dir / name).unlink(missing_ok=True)
