"""The feature cache: the one owner of a cache directory (layout, shards, class table, index, loading).

Callers outside this package import from here; modules inside it import each other's submodules directly.
"""

from avzsl.pipeline.cache.index import (
    cache_has_sequences,
    check_cache_ready,
    finalize,
    index_is_current,
    load_features,
    load_sequences,
    mark_finalized,
    sequences_missing_message,
    write_cache,
)
from avzsl.pipeline.cache.shards import (
    CACHE_INFO,
    CLASS_TABLE,
    INDEX_CSV,
    INDEX_H5,
    SHARD_DIR,
    CacheError,
    ClassTable,
    FeatureTable,
    VideoFeatures,
    list_shards,
    read_cache_info,
    read_class_table,
    read_shard,
    read_shard_attrs,
    read_video_records,
    remove_temporary_files,
    shard_is_complete,
    shard_path,
    verify_datasets,
    weights_are_random,
    write_cache_info,
    write_class_table,
    write_h5,
    write_shard,
)

__all__ = [
    "CACHE_INFO", "CLASS_TABLE", "INDEX_CSV", "INDEX_H5", "SHARD_DIR",
    "CacheError", "ClassTable", "FeatureTable", "VideoFeatures", "cache_has_sequences", "check_cache_ready",
    "finalize", "index_is_current", "list_shards", "load_features", "load_sequences", "mark_finalized",
    "read_cache_info", "read_class_table", "read_shard", "read_shard_attrs", "read_video_records",
    "remove_temporary_files", "sequences_missing_message", "shard_is_complete", "shard_path", "verify_datasets",
    "weights_are_random", "write_cache", "write_cache_info", "write_class_table", "write_h5", "write_shard",
]
