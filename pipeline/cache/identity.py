"""What a run binds itself to in a cache: the digest of its content, and the input videos it knows of.

:func:`content_digest` is one SHA-256 over the record ``finalize`` wrote into ``cache.json`` (every shard's row
count and the checksums of its ids, classes and mean features, and the index's checksums; a reader compares the
shards with it, :mod:`avzsl.pipeline.cache.load`) and the checksums of the class table (names, phrases, embeddings,
provenance). Re-extracting a cache in place with other weights, other videos or other class embeddings changes
it; moving or copying the cache does not. It is computed from ``cache.json`` and the class table's attributes only,
so a finished run can be confirmed without loading any features.

:func:`input_video_ids` lists every input video of an extraction (``manifest.csv``), those that failed included:
a split row naming a video by its bare file stem is ambiguous when two inputs share that stem, even if one of them
holds no features.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from pathlib import Path

import h5py

from avzsl.pipeline.cache.h5 import stored_digests
from avzsl.pipeline.cache.layout import CLASS_TABLE, MANIFEST_CSV, RERUN, read_cache_info
from avzsl.pipeline.core.errors import CacheError

_logger = logging.getLogger(__name__)


def content_digest(cache_dir: Path) -> str | None:
    """SHA-256 of a finalized cache's content record and class-table checksums; None for a cache finalized by an
    older avzsl (no content record) or one without a class table, which cannot be identified this way.

    Raises:
        CacheError: ``cache.json`` is missing or corrupt, or the class table is unreadable.
    """
    cache_dir = Path(cache_dir)
    info = read_cache_info(cache_dir)
    record = info.get("content")
    table = cache_dir / CLASS_TABLE
    if not info.get("finalized") or record is None or not table.is_file():
        return None
    try:
        with h5py.File(table, "r") as f:
            classes = stored_digests(f)
    except OSError as exc:
        raise CacheError(f"{table}: corrupt class table ({exc}); {RERUN}") from exc
    if not classes:
        return None
    payload = json.dumps({"content": record, "classes": classes}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def input_video_ids(cache_dir: Path) -> list[str]:
    """Ids of every input video of the cache's extraction (``manifest.csv``), failed ones included; empty for a
    cache without a manifest (synthetic or imported: all its videos are in the index)."""
    path = Path(cache_dir) / MANIFEST_CSV
    if not path.is_file():
        return []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return [row["video_id"] for row in csv.DictReader(f) if row.get("video_id")]
    except (OSError, UnicodeDecodeError, csv.Error, KeyError) as exc:
        raise CacheError(f"{path}: unreadable list of input videos ({exc}); {RERUN}") from exc
