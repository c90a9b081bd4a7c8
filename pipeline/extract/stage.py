"""Extraction stage: raw videos -> audio/visual features in HDF5 shards of a cache, resumable and distributable.

The unit of work is a shard: a fixed slice of the sorted video list (``shard_size`` videos, ``plan_shards``). Each
rank takes its extraction lock (:class:`~avzsl.pipeline.extract.ownership.ShardLock`), checks or writes the cache
identity, and lets the cache say which of the shards it owns (``shard % world_size == rank``) need work: a rerun
skips complete shards, redoes damaged ones and those whose inputs changed, and deletes its temporary leftovers
(:func:`~avzsl.pipeline.cache.shards_to_extract`). It extracts those one by one
(:class:`~avzsl.pipeline.extract.shard.ShardExtractor`). When every shard is complete, the finishing process
finalizes the cache: index, class table, manifest and failure lists (:func:`~avzsl.pipeline.cache.finalize_cache`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avzsl.pipeline.cache import ClassTable, finalize_cache, identity_digest, shards_to_extract
from avzsl.pipeline.core.progress import progress_bar
from avzsl.pipeline.data.video_list import VideoEntry
from avzsl.pipeline.extract.config import (
    ExtractConfig,
    ExtractionSummary,
    RunOptions,
    cache_identity,
    check_or_write_identity,
    plan_shards,
)
from avzsl.pipeline.extract.input_checks import changed_inputs
from avzsl.pipeline.extract.ownership import ShardLock
from avzsl.pipeline.extract.shard import ShardExtractor
from avzsl.pipeline.extract.world import WorldInfo

_logger = logging.getLogger(__name__)


def run_extraction(
    entries: Sequence[VideoEntry],
    cache_dir: Path,
    cfg: ExtractConfig,
    options: RunOptions,
    encoders: Any,
    class_table: ClassTable,
    world: WorldInfo,
) -> ExtractionSummary:
    """Extract the shards this rank owns, then finalize the cache if every shard is complete.

    Args:
        entries: every input video (all ranks must see the same list).
        cache_dir: output cache.
        cfg: feature-determining settings.
        options: speed settings.
        encoders: loaded encoders (``encode_visual``/``encode_audio``, ``spec``, ``weights_sha256``).
        class_table: class-name embeddings of every class in ``entries``.
        world: rank and world size.
    """
    started = time.perf_counter()
    cache_dir = Path(cache_dir)
    shards = plan_shards(entries, cfg.shard_size)
    identity = cache_identity(cfg, entries, encoders, class_table.provenance)
    digest = identity_digest(identity)  # recorded on every shard: a rank trusts only shards of this extraction
    lock = ShardLock(cache_dir, world.rank, world.world_size, len(shards))
    with lock:
        check_or_write_identity(cache_dir, identity, options.overwrite, world, options.device)
        owned = [i for i in range(len(shards)) if world.owns(i)]
        paths = {e.video_id: e.path for e in entries}
        todo = shards_to_extract(cache_dir, owned, lambda records: changed_inputs(records, paths), digest)
        skipped = len(owned) - len(todo)
        if skipped:
            _logger.info("rank %d: %d of %d owned shard(s) already complete, skipped", world.rank, skipped, len(owned))
        extractor = ShardExtractor(cache_dir, cfg, options, encoders, world, digest)
        total_videos = sum(len(shards[i]) for i in todo)
        results = []
        with progress_bar(
            total_videos,
            f"extract rank {world.rank}" if world.world_size > 1 else "extract",
            "video",
            enabled=options.progress,
            position=world.local_rank,
        ) as progress:
            for i in todo:
                result = extractor.process(i, shards[i], progress)
                results.append(result)
                progress.set_postfix(shard=i, failed=sum(sum(r.failures.values()) for r in results))
                _logger.info(
                    "shard %d: %d/%d videos ok, %d windows, %.1f s (%.2f videos/s)",
                    i,
                    result.ok,
                    result.videos,
                    result.windows,
                    result.seconds,
                    result.videos / max(result.seconds, 1e-9),
                )
    finalized = finalize_cache(cache_dir, len(shards), class_table, digest)
    if finalized is None:
        _logger.info("rank %d done; the cache is finalized when the last shard completes", world.rank)
    return ExtractionSummary(len(shards), results, skipped, finalized, time.perf_counter() - started)
