"""What a run was trained on, and the checks that prediction repeats it.

A run records its feature cache's ``cache.json`` in ``model.pt`` (:func:`run_cache_info`): the encoder (name and
spec hash), its weights (checkpoint sha256, or the seed of random weights), the decoder, the window schedule and
how the class names were embedded (word vectors and OOV policy). :func:`encoder_request` checks the user's weight
options against that record, :func:`load_encoders` builds the encoders and refuses other weights, and
:func:`run_class_embedder` gives an embedder with the run's word vectors (fingerprint checked).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avzsl.extractors.encoders.registry import build_encoder, get_encoder_spec
from avzsl.extractors.text.class_names import GLOVE_PACKAGE, ClassNameEmbedder, fingerprint_file
from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.run.layout import MODEL_PT

if TYPE_CHECKING:
    import torch

_logger = logging.getLogger(__name__)


class PredictError(UserError):
    """The run cannot be repeated on new videos as asked (weights, word vectors, encoder or class names differ)."""


def run_cache_info(state: dict[str, Any]) -> dict[str, Any]:
    """The ``cache.json`` content recorded in a run's ``model.pt`` (``cache_info``)."""
    raw = state.get("cache_info")
    try:
        info = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise PredictError(f"the run's {MODEL_PT} has an unreadable record of its feature cache ({exc})") from exc
    return info


@dataclass
class EncoderRequest:
    """How to rebuild the run's encoders: registry name, weights (checkpoint or seeded random) and decoding."""

    name: str
    spec_hash: str
    weights_sha256: str
    random_seed: int | None
    decoder: str
    windows: str

    @property
    def random_weights(self) -> bool:
        """Whether the run's features came from randomly initialised encoders."""
        return self.weights_sha256 == "random"


def encoder_request(
    info: dict[str, Any], checkpoint: Path | None, random_weights: bool, check_weights: bool = True
) -> EncoderRequest:
    """Check the user's weight options against the run's cache record; returns what to build.

    ``check_weights=False`` (only feature caches to score, no video to encode) skips the weight options.

    Raises:
        PredictError: features not computed by ``avzsl-extract`` (imported or synthetic), an encoder spec that
            changed since, or weight options that cannot reproduce the recorded weights.
    """
    encoder = info.get("encoder") or {}
    extraction = info.get("extraction") or {}
    weights = info.get("weights") or {}
    if "spec_hash" not in encoder or "decoder" not in extraction or "sha256" not in weights:
        raise PredictError(
            f"the run was trained on features that avzsl-extract did not compute (encoder "
            f"{encoder.get('name', 'unknown')!r}); avzsl-predict needs a run trained on a cache written by "
            "avzsl-extract, whose encoder, weights and decoding it repeats"
        )
    name = str(encoder.get("name", extraction.get("encoder")))
    try:
        spec = get_encoder_spec(name)
    except KeyError as exc:
        raise PredictError(f"the run's encoder {name!r} is not registered in this avzsl ({exc.args[0]})") from exc
    if spec.spec_hash() != encoder["spec_hash"]:
        raise PredictError(
            f"the encoder {name!r} of this avzsl (spec {spec.spec_hash()}) differs from the one the run's features "
            f"were extracted with (spec {encoder['spec_hash']}): predictions would not match the training features"
        )
    sha = str(weights["sha256"])
    seed = weights.get("random_seed")
    request = EncoderRequest(
        name=name,
        spec_hash=str(encoder["spec_hash"]),
        weights_sha256=sha,
        random_seed=int(seed if seed is not None else extraction.get("seed", 0)) if sha == "random" else None,
        decoder=str(extraction["decoder"]),
        windows=str(extraction.get("windows", "clean")),
    )
    if not check_weights:
        return request
    if request.random_weights:
        if checkpoint is not None or not random_weights:
            raise PredictError(
                f"the run's features were extracted with RANDOM encoder weights (seed {request.random_seed}); "
                "pass --random-weights (not a checkpoint) to repeat them (such predictions are meaningless)"
            )
    elif spec.packaged_weights:  # weights are data of installed packages: nothing to pass, the sha is checked
        if checkpoint is not None or random_weights:
            raise PredictError(
                f"the run's encoder {name!r} takes its weights from installed packages; drop --selavi-checkpoint "
                "and --random-weights"
            )
    else:
        if random_weights:
            raise PredictError(
                f"the run's features were extracted with the checkpoint of sha256 {sha}; --random-weights cannot "
                "reproduce them: pass --selavi-checkpoint with that file"
            )
        if checkpoint is None:
            raise PredictError(
                f"the run's features were extracted with the checkpoint of sha256 {sha}; pass --selavi-checkpoint "
                f"with that file ({spec.weights_file})"
            )
    return request


def load_encoders(request: EncoderRequest, checkpoint: Path | None, device: str | torch.device) -> Any:
    """Build the run's encoders; a checkpoint whose sha256 is not the recorded one is refused."""
    encoders = build_encoder(
        request.name,
        {"selavi": checkpoint} if checkpoint is not None else None,
        request.random_weights,
        device=device,
        seed=request.random_seed if request.random_seed is not None else 0,
    )
    if encoders.weights_sha256 != request.weights_sha256:
        if checkpoint is None:
            raise PredictError(
                f"the installed weights of {request.name} ({encoders.weights_sha256}) are not those the run's "
                f"features were extracted with ({request.weights_sha256}); reinstall the pinned packages"
            )
        raise PredictError(
            f"{checkpoint}: sha256 {encoders.weights_sha256} is not the checkpoint the run's features were extracted "
            f"with (sha256 {request.weights_sha256})"
        )
    return encoders


def run_class_embedder(info: dict[str, Any], word_vectors: str | Path | None, oov: str | None = None) -> Any:
    """A :class:`~avzsl.extractors.text.class_names.ClassNameEmbedder` with the run's word vectors and OOV policy.

    ``oov`` replaces the run's out-of-vocabulary policy for the candidate names (``--oov``); None keeps it.

    Raises:
        PredictError: the vectors cannot be repeated (in-memory or unknown source), ``--word-vectors`` is missing,
            superfluous, or a different file (fingerprint mismatch), or the kind/dimension differ.
    """
    provenance = info.get("class_embedder") or {}
    vectors = provenance.get("vectors") or {}
    oov = oov or provenance.get("oov_policy", "error")
    if vectors.get("package") == GLOVE_PACKAGE:
        if word_vectors is not None and str(word_vectors) != "glove":
            raise PredictError(
                f"the run's class names were embedded with the bundled GloVe vectors ({GLOVE_PACKAGE}), not a "
                f"word-vector file: drop --word-vectors {word_vectors}"
            )
        embedder = ClassNameEmbedder(None, oov=oov)
        recorded, current = vectors.get("version"), embedder.source_info.get("version")
        if recorded and current and recorded != current:
            _logger.warning("the run used %s %s, this environment has %s", GLOVE_PACKAGE, recorded, current)
    elif "fingerprint" in vectors:
        described = f"{provenance.get('kind', 'word')} vectors from {vectors.get('path')} ({vectors.get('format')})"
        if word_vectors is None:
            raise PredictError(
                f"the run's class names were embedded with {described}; pass --word-vectors with that file"
            )
        path = Path(word_vectors)
        if not path.is_file():
            raise PredictError(f"{path}: word-vector file not found")
        fingerprint = fingerprint_file(path)
        if fingerprint != vectors["fingerprint"]:
            raise PredictError(
                f"{path}: not the word-vector file the run was trained with ({described}; fingerprint "
                f"{vectors['fingerprint'][:16]}..., this file {fingerprint[:16]}...)"
            )
        embedder = ClassNameEmbedder(path, oov=oov)
    else:
        raise PredictError(
            "the run's class embeddings do not record a word-vector source that can be loaded again "
            f"({vectors or 'no provenance'}); new class names cannot be embedded the same way"
        )
    if provenance.get("kind") and provenance["kind"] != embedder.kind:
        raise PredictError(f"the run used {provenance['kind']} vectors, {word_vectors} holds {embedder.kind} vectors")
    return embedder
