"""Picking up a cache that an earlier run left: which shards to (re)write, and what leftovers to delete.

Every function here deletes or rewrites files, so the caller holds the lock of what it touches: an extraction
rank's lock for the shards it owns (:func:`shards_to_extract`, :func:`discard_extraction`), the cache's lock for
:func:`remove_temporary_files`.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from avzsl.pipeline.cache.layout import (
    CACHE_INFO,
    FINALIZE_OUTPUTS,
    SHARD_DIR,
    legacy_temporary,
    list_shards,
    recorded_identity,
    shard_index,
    shard_path,
    shard_stats_path,
    stats_path,
)
from avzsl.pipeline.cache.shards import of_extraction, read_video_records, shard_is_complete, write_shard_stats
from avzsl.pipeline.core.atomic import temporaries_of

_logger = logging.getLogger(__name__)


_SHARD_NAME_IN = re.compile(r"shard-(\d{5,})\.")


def remove_temporary_files(cache_dir: Path) -> list[Path]:
    """Delete what interrupted writes of the cache's own files left and return it (caller holds the cache's lock).

    Only names avzsl uses are touched: the temporaries (``.<name>.<random>.tmp``) of ``cache.json``, of the files
    finalize writes and of every shard and stats file, and the legacy ``shard-XXXXX.h5.tmp``; a user's ``notes.tmp``
    in the cache stays.
    """
    cache_dir = Path(cache_dir)
    shard_dir = cache_dir / SHARD_DIR
    indices = set()
    if shard_dir.is_dir():
        indices = {int(m.group(1)) for p in shard_dir.iterdir() if (m := _SHARD_NAME_IN.match(p.name.lstrip(".")))}
    targets = [cache_dir / name for name in (CACHE_INFO, *FINALIZE_OUTPUTS)]
    removed = []
    for path in targets:
        removed += temporaries_of(path)
    for i in sorted(indices):
        shard = shard_path(cache_dir, i)
        removed += [legacy_temporary(shard), *temporaries_of(shard), *temporaries_of(shard_stats_path(shard))]
    removed = [p for p in removed if p.is_file() and not p.is_symlink()]
    for path in removed:
        path.unlink(missing_ok=True)
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
    cache_dir: Path, owned: Sequence[int], changed_inputs: Callable[[list[dict[str, Any]]], list[str]],
    identity: str | None = None,
) -> list[int]:
    """Prepare a rerun over the shards ``owned`` and return those to extract (again), sorted.

    In order: temporary leftovers of the owned shards are deleted; a shard is redone when it is missing, truncated
    or fails its checksums (every dataset is read, so a bit flip since it was written is redone too), when it was
    written by another extraction than ``identity`` (e.g. before another rank's ``--overwrite`` replaced the
    extraction: :func:`~avzsl.pipeline.cache.shards.of_extraction`), or when ``changed_inputs(records)`` names input
    videos that changed since it was extracted; a complete shard whose stats file is missing (killed between the
    shard's rename and its stats) gets its stats back from its records.

    Args:
        cache_dir: the cache.
        owned: indices of the shards this process owns.
        changed_inputs: descriptions of the inputs of a shard's video records that changed (empty: none).
        identity: the identity digest of this extraction (:func:`~avzsl.pipeline.cache.layout.identity_digest`);
            None trusts every complete shard.
    """
    remove_shard_temporaries(cache_dir, owned)
    todo = [i for i in owned if not shard_is_complete(shard_path(cache_dir, i), verify=True)]
    for i in todo:
        if shard_path(cache_dir, i).exists():
            _logger.warning("%s is truncated or corrupt: extracting it again", shard_path(cache_dir, i).name)
    accept_unrecorded = recorded_identity(cache_dir) is None
    for i in owned:
        if i not in todo and not of_extraction(shard_path(cache_dir, i), identity, accept_unrecorded):
            _logger.warning("%s was written by another extraction of this cache (replaced since, e.g. by another "
                            "rank's --overwrite): extracting it again", shard_path(cache_dir, i).name)
            todo.append(i)
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
