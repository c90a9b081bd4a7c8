"""Whether a cache can feed a label-space method (ConSE): an encoder with a named classifier head, word vectors.

Read from ``cache.json`` and the class table's provenance only (cheap: no features, no encoder is built).
"""

from __future__ import annotations

from pathlib import Path

from avzsl.extractors.encoders.label_heads import LABELLED_ENCODERS
from avzsl.extractors.text.class_names import GLOVE_PACKAGE
from avzsl.pipeline.cache.classes import read_class_table
from avzsl.pipeline.cache.layout import read_cache_info


def label_head_problem(cache_dir: Path) -> str | None:
    """Why the cache cannot feed a label-space method (one sentence starting with "needs"), or None when it can."""
    info = read_cache_info(Path(cache_dir))
    name = (info.get("encoder") or {}).get("name")
    if name not in LABELLED_ENCODERS or "sha256" not in (info.get("weights") or {}):
        return (f"needs features of an encoder set with a named classifier head ({', '.join(LABELLED_ENCODERS)}) "
                f"extracted by avzsl-extract; this cache's encoder is {name or 'not recorded'!r}")
    vectors = read_class_table(Path(cache_dir)).provenance.get("vectors") or {}
    if vectors.get("package") != GLOVE_PACKAGE and "path" not in vectors:
        return "needs class embeddings from word vectors (GloVe or a word-vector file); this cache has others"
    return None
