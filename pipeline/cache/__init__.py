"""The feature cache: the one owner of a cache directory (layout, shards, class table, index, loading, resuming).

The cache's file and lock names are defined here, and every file is written through
:func:`avzsl.pipeline.core.atomic.atomic_write` (one temporary-name convention). Callers outside this package import
from here; modules inside it import each other's submodules directly:

- :mod:`~avzsl.pipeline.cache.layout`: file names, records, the value types, ``cache.json``;
- :mod:`~avzsl.pipeline.cache.h5`: HDF5 writing and per-dataset checksums;
- :mod:`~avzsl.pipeline.cache.shards`, :mod:`~avzsl.pipeline.cache.classes`: shards and the class table;
- :mod:`~avzsl.pipeline.cache.resume`: what a rerun redoes and which leftovers it deletes;
- :mod:`~avzsl.pipeline.cache.index`: finalizing (index, record lists, the ``finalized`` flag);
- :mod:`~avzsl.pipeline.cache.load`: reading a finalized cache back, verified;
- :mod:`~avzsl.pipeline.cache.identity`: the content digest a run records, the input videos of an extraction.
"""

from avzsl.pipeline.cache.classes import read_class_table, write_class_table
from avzsl.pipeline.cache.h5 import verify_datasets, write_h5
from avzsl.pipeline.cache.heads import label_head_problem
from avzsl.pipeline.cache.identity import content_digest, input_video_ids
from avzsl.pipeline.cache.index import (
    all_shards_complete,
    finalize,
    finalize_cache,
    index_is_current,
    mark_finalized,
    write_cache,
)
from avzsl.pipeline.cache.layout import (
    CACHE_INFO,
    CLASS_TABLE,
    FAILURES_CSV,
    IDENTITY_KEY,
    INDEX_CSV,
    INDEX_H5,
    MANIFEST_CSV,
    RECORD_FIELDS,
    SHARD_DIR,
    ClassTable,
    FeatureTable,
    VideoFeatures,
    identity_digest,
    list_shards,
    rank_lock_name,
    rank_locks,
    read_cache_info,
    shard_index,
    shard_path,
    stats_path,
    stored_identity,
    weights_are_random,
    write_cache_info,
)
from avzsl.pipeline.cache.load import (
    cache_has_sequences,
    check_cache_ready,
    load_features,
    load_sequences,
    sequences_missing_message,
)
from avzsl.pipeline.cache.resume import discard_extraction, remove_temporary_files, shards_to_extract
from avzsl.pipeline.cache.shards import (
    read_shard,
    read_shard_attrs,
    read_video_records,
    shard_is_complete,
    write_shard,
    write_shard_stats,
)
from avzsl.pipeline.core.errors import CacheError  # defined there so the CLIs catch it without importing torch

__all__ = [
    "CACHE_INFO", "CLASS_TABLE", "FAILURES_CSV", "IDENTITY_KEY", "INDEX_CSV", "INDEX_H5", "MANIFEST_CSV",
    "RECORD_FIELDS", "SHARD_DIR", "CacheError", "ClassTable", "FeatureTable", "VideoFeatures", "all_shards_complete",
    "cache_has_sequences", "check_cache_ready", "content_digest", "discard_extraction", "finalize", "finalize_cache",
    "identity_digest", "index_is_current", "input_video_ids", "label_head_problem", "list_shards", "load_features",
    "load_sequences", "mark_finalized", "rank_lock_name", "rank_locks", "read_cache_info", "read_class_table",
    "read_shard", "read_shard_attrs", "read_video_records", "remove_temporary_files", "sequences_missing_message",
    "shard_index", "shard_is_complete", "shard_path", "shards_to_extract", "stats_path", "stored_identity",
    "verify_datasets", "weights_are_random", "write_cache", "write_cache_info", "write_class_table", "write_h5",
    "write_shard", "write_shard_stats",
]
