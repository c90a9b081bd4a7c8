"""The label bridge of a label-space method (ConSE) trained or evaluated on a feature cache.

ConSE scores a feature through the classifier head of the encoder that computed it and the word vectors of the head's
label names (:mod:`avzsl.model.conse`). Both are rebuilt here from the cache's record: the encoder set of
``cache.json`` with the recorded weights (packaged files, sha256 checked, or the recorded random seed), and the word
vectors of the cache's class table (the bundled GloVe, or the recorded word-vector file, fingerprint checked), so
the label vectors live in the same space as the class embeddings. The method keeps them as buffers: a saved run
needs neither again.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from avzsl.extractors.encoders.label_heads import attach_label_bridge
from avzsl.extractors.encoders.registry import build_encoder
from avzsl.extractors.text.class_names import GLOVE_PACKAGE, ClassNameEmbedder, fingerprint_file
from avzsl.pipeline.cache import CacheError, label_head_problem, read_cache_info, read_class_table

_logger = logging.getLogger(__name__)


def cache_embedder(cache_dir: Path) -> ClassNameEmbedder:
    """The word vectors the cache's class names were embedded with.

    Raises:
        CacheError: the class table was not embedded with word vectors that can be loaded again.
    """
    provenance = read_class_table(Path(cache_dir)).provenance
    vectors = provenance.get("vectors") or {}
    if vectors.get("package") == GLOVE_PACKAGE:
        return ClassNameEmbedder(None)
    path = Path(str(vectors.get("path", "")))
    if "fingerprint" in vectors and path.is_file() and fingerprint_file(path) == vectors["fingerprint"]:
        return ClassNameEmbedder(path)
    raise CacheError(f"{cache_dir}: its class names were not embedded with word vectors that can be loaded again "
                     f"({vectors or 'no provenance'}); a label-space method embeds the classifier's labels with them")


def attach_cache_bridge(method: Any, cache_dir: Path) -> None:
    """Set a label-space method's heads and label vectors from the cache's encoder and word vectors.

    Raises:
        CacheError: the cache's encoder has no named head, its weights cannot be rebuilt as recorded, or its
            class names' word vectors cannot be loaded again.
    """
    cache_dir = Path(cache_dir)
    problem = label_head_problem(cache_dir)
    if problem:
        raise CacheError(f"{cache_dir}: method {method.name!r} {problem}")
    info = read_cache_info(cache_dir)
    weights = info["weights"]
    random_weights = weights["sha256"] == "random"
    seed = int(weights.get("random_seed", (info.get("extraction") or {}).get("seed", 0)) or 0)
    encoders = build_encoder(info["encoder"]["name"], None, random_weights, seed=seed)
    if encoders.weights_sha256 != weights["sha256"]:
        raise CacheError(f"{cache_dir}: the installed weights of {info['encoder']['name']} "
                         f"({encoders.weights_sha256}) are not those its features were extracted with "
                         f"({weights['sha256']}); the classifier head would not match the features")
    usable = attach_label_bridge(method, encoders, cache_embedder(cache_dir))
    _logger.info("%s: label bridge of %s (labels with a word vector: %s)", method.name, info["encoder"]["name"],
                 ", ".join(f"{m} {n}" for m, n in usable.items()))
