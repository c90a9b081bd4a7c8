"""``avzsl-predict --zero-shot`` with ConSE on the packaged encoders: no run, no weight option, nothing downloaded.

The videos are decoded and encoded as ``avzsl-extract --encoder effnet_lite0_aisfx`` would (installed weights), the
candidate names and the 1000 ImageNet label names are embedded with the bundled GloVe vectors, and the registered
``conse`` method (:mod:`avzsl.model.conse`) ranks the names by the cosine of each video's ImageNet-label mixture with
them. Only the visual stream is used: the aiSFX audio network's classifier labels are not published
(:mod:`avzsl.extractors.encoders.label_heads`).

:func:`conse_scorer` is the same scorer for features already computed (a cache of that encoder set), e.g. to fuse
it with a trained run (``bench/predict_heldout.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from avzsl.extractors.encoders.label_heads import attach_label_bridge
from avzsl.extractors.encoders.registry import build_encoder
from avzsl.extractors.text.class_names import ClassNameEmbedder, OOVError
from avzsl.model.registry import FeatureDims, Method, build_method
from avzsl.pipeline.predict.explain import Scoring, rank_videos
from avzsl.pipeline.predict.ranking import (
    Candidates,
    VideoFailure,
    VideoPrediction,
    encode_videos,
    usable_videos,
    with_failures,
)
from avzsl.pipeline.predict.records import PredictError

_logger = logging.getLogger(__name__)

CONSE_ENCODERS = ("effnet_lite0_aisfx",)


def conse_scorer(encoders: Any, embedder: ClassNameEmbedder, text_dim: int, top_t: int = 10) -> Method:
    """The ``conse`` method for features of ``encoders``, its bridge set from their head and ``embedder``."""
    spec = encoders.spec
    dims = FeatureDims(audio_dim=spec.audio_feature_dim, visual_dim=spec.visual_feature_dim, text_dim=text_dim)
    method = build_method("conse", dims, {"top_t": top_t})
    usable = attach_label_bridge(method, encoders, embedder)
    _logger.debug("conse: labels with a word vector: %s", usable)
    return method.eval()


def embed_names(embedder: ClassNameEmbedder, names: Sequence[str]) -> Candidates:
    """Candidates (never seen: there is no run) embedded with ``embedder``.

    Raises:
        PredictError: no name given, or a name none of whose words is known.
    """
    names = list(names)
    if not names:
        raise PredictError("no candidate class names given")
    try:
        embedded = embedder.embed(names)
    except OOVError as exc:
        raise PredictError(f"candidate class names cannot be embedded: {exc}") from exc
    return Candidates(embedded.names, embedded.phrases, embedded.embeddings, [False] * len(names))


def predict_conse(
    paths: Sequence[str | Path],
    class_names: Sequence[str],
    random_weights: bool = False,
    top_t: int = 10,
    top: int = 5,
    workers: int = 1,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    oov: str = "skip",
    seed: int = 0,
) -> dict[str, VideoPrediction | VideoFailure]:
    """Rank arbitrary class names for raw videos with ConSE on the packaged encoders (no run).

    Args:
        paths: video files.
        class_names: candidate class names (words the bundled GloVe vectors know).
        random_weights: seeded random networks (tests only: meaningless rankings).
        top_t: T, the most probable ImageNet labels combined.
        top: predictions kept per video.
        workers / batch_size: decoding processes and windows per forward.
        device: where the encoders run.
        oov: policy for candidate-name words GloVe lacks (``skip`` by default: a name needs one known word).
        seed: seed of random weights.

    Returns:
        path -> :class:`VideoPrediction` (``score`` = cosine in [-1, 1], ``p`` None: no probability; the window
        support says which class each 1-s window ranks first), or :class:`VideoFailure`.
    """
    if top_t < 1:
        raise PredictError(f"--top-labels must be >= 1, got {top_t}")
    embedder = ClassNameEmbedder(None, oov=oov)
    candidates = embed_names(embedder, class_names)
    encoders = build_encoder(CONSE_ENCODERS[0], None, random_weights, device=device, seed=seed)
    method = conse_scorer(encoders, embedder, embedder.dim, top_t)
    encoded = encode_videos([str(p) for p in paths], encoders, "pyav", "clean", workers=workers,
                            batch_size=batch_size)
    score_is = (f"cos(mixture of the word vectors of the video's top-{top_t} ImageNet labels, class name) "
                "(ConSE on EfficientNet-Lite0, visual only; no probability)")
    scoring = Scoring(method.to(device), candidates, None, False, device, probabilities=False, score_is=score_is)
    return with_failures(encoded, rank_videos(scoring, usable_videos(encoded), top))
