"""Zero-shot prediction on raw videos with a trained run: decode, encode, embed any class names, score, rank.

Everything that produced the run's training features is repeated from the run's record of its cache
(``cache_info`` in ``model.pt``): the encoder (name and spec hash), its weights (checkpoint sha256, or the seed of
random weights), the decoder and the window schedule. Decoding and encoding go through the extraction code
(:func:`avzsl.pipeline.extract.stage.encode_window_stream`), so a video's feature is exactly what ``avzsl-extract``
would have stored: the mean over its windows. Candidate class names are embedded with the same word vectors as the
cache's class table (bundled GloVe, or a word2vec/fastText file whose fingerprint must match) and its OOV policy.

Scores are the model's fused probabilities p over the candidates (eq. 6/12). With calibrated stacking (the default
when seen classes are among the candidates) the run's gamma (chosen on stage-1 validation) is subtracted from the
scores of candidates that are seen classes of the run. See ``docs/predict.md``.
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avzsl.extractors.stream import WindowCountError, encode_window_stream, pool_windows, stack_windows
from avzsl.pipeline.core.errors import UserError

_logger = logging.getLogger(__name__)

RANDOM_PREDICTIONS_WARNING = (
    "the run was trained on features of RANDOM encoder weights (--random-weights): these predictions are "
    "MEANINGLESS and only exercise the pipeline"
)
CALIBRATIONS = ("auto", "off")


class PredictError(UserError):
    """The run cannot be repeated on new videos as asked (weights, word vectors, encoder or class names differ)."""


# --------------------------------------------------------------------------------------------------------------
# encoding a list of videos with the extraction code path


@dataclass
class EncodedVideo:
    """Features of one video, as extraction stores them.

    Attributes:
        audio_mean / visual_mean: ``(512,)`` float32, mean over the video's windows.
        audio_seq / visual_seq: ``(T, 512)`` float32 per-window features.
        window_sec: ``(T, 2)`` window start/end seconds.
    """

    audio_mean: np.ndarray
    visual_mean: np.ndarray
    audio_seq: np.ndarray
    visual_seq: np.ndarray
    window_sec: np.ndarray

    @property
    def windows(self) -> int:
        """Number of windows T."""
        return int(self.window_sec.shape[0])


@dataclass
class VideoFailure:
    """Why a video has no features: ``status`` (a probe status, ``decode_error`` or ``too_short``) and reason."""

    status: str
    reason: str

    def message(self) -> str:
        """``"status: reason"`` (one line)."""
        return f"{self.status}: {self.reason}" if self.reason else self.status


def encode_videos(
    paths: Sequence[str],
    encoders: Any,
    decoder: str,
    schedule: str,
    workers: int = 1,
    batch_size: int = 16,
    probe_jobs: int = 1,
) -> dict[str, EncodedVideo | VideoFailure]:
    """Probe, decode and encode a list of videos exactly as a shard of ``avzsl-extract`` does.

    Args:
        paths: video files (duplicates are processed once).
        encoders: ``encode_visual``/``encode_audio`` (e.g. :class:`avzsl.extractors.encoders.selavi.SelaviEncoders`).
        decoder / schedule: the cache's ``extraction.decoder`` and ``extraction.windows``.
        workers: decoding worker processes (0: inline).
        batch_size: windows per encoder forward.
        probe_jobs: parallel probes.

    Returns:
        path -> :class:`EncodedVideo`, or :class:`VideoFailure` for an unusable video (never raises for one), in
        the order of ``paths``.
    """
    from avzsl.extractors.decode.probe import probe_many

    unique = list(dict.fromkeys(str(p) for p in paths))
    probes = probe_many(unique, n_jobs=probe_jobs)
    results: dict[str, EncodedVideo | VideoFailure] = {}
    for path, probe in zip(unique, probes, strict=True):
        if not probe.ok:
            results[path] = VideoFailure(probe.status, probe.reason)
    todo = [(k, path, probes[k]) for k, path in enumerate(unique) if probes[k].ok]

    def video_end(item: dict[str, Any]) -> None:
        if "done" not in item:
            results[unique[item["video"]]] = VideoFailure(item["status"], item["reason"])

    store, expected = encode_window_stream(todo, encoders, decoder, schedule, workers, batch_size, video_end)
    for k, path, _ in todo:
        if path in results:
            continue
        try:
            audio_seq, visual_seq, window_sec = stack_windows(store.get(k, []), expected.get(k))
        except WindowCountError as exc:
            results[path] = VideoFailure("decode_error", str(exc))
            continue
        audio_mean, visual_mean = pool_windows(encoders.spec, audio_seq, visual_seq)  # as the cache pools them
        results[path] = EncodedVideo(audio_mean, visual_mean, audio_seq, visual_seq, window_sec)
    return {path: results[path] for path in unique}


# --------------------------------------------------------------------------------------------------------------
# what the run was trained on, and checks that it is repeated


def run_cache_info(state: dict[str, Any]) -> dict[str, Any]:
    """The ``cache.json`` content recorded in a run's ``model.pt``."""
    raw = state.get("cache_info")
    try:
        info = json.loads(raw) if isinstance(raw, str) else dict(raw or {})
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise PredictError(f"the run's model.pt has an unreadable record of its feature cache ({exc})") from exc
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
    from avzsl.extractors.encoders.registry import get_encoder_spec

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
    from avzsl.extractors.encoders.registry import build_encoder

    encoders = build_encoder(
        request.name,
        checkpoint_path=checkpoint,
        random_weights=request.random_weights,
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
    from avzsl.extractors.text.class_names import GLOVE_PACKAGE, ClassNameEmbedder, fingerprint_file

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


# --------------------------------------------------------------------------------------------------------------
# candidate classes, scores and ranking


@dataclass
class Candidates:
    """The candidate classes of a prediction.

    Attributes:
        names: C class names as given.
        phrases: the phrase embedded for each.
        embeddings: ``(C, D_W)`` float32 unit rows.
        seen: C flags: the class is a seen (trained-on) class of the run.
    """

    names: list[str]
    phrases: list[str]
    embeddings: np.ndarray
    seen: list[bool]


def parse_class_list(text: str) -> list[str]:
    """Class names from a comma-separated string (blank items dropped, whitespace stripped)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def read_class_file(path: Path) -> list[str]:
    """Class names from a file: one per line; blank lines and lines starting with ``#`` are ignored."""
    path = Path(path)
    if not path.is_file():
        raise PredictError(f"{path}: class file not found")
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def embed_candidates(
    embedder: Any,
    names: Sequence[str],
    seen_classes: Sequence[str],
    known_phrases: dict[str, str] | None = None,
) -> Candidates:
    """Embed candidate class names and mark the run's seen classes (case-insensitive).

    Args:
        embedder: the run's class-name embedder (:func:`run_class_embedder`).
        names: C class names, unique case-insensitively.
        seen_classes: the run's seen classes (``state["seen_classes"]``).
        known_phrases: lower-cased class name -> phrase of the cache's class table; a candidate found there is
            embedded with the same phrase as in training, any other with the default ``phrase_of(name)``.
    """
    from avzsl.extractors.text.class_names import OOVError, phrase_of

    names = list(names)
    if not names:
        raise PredictError("no candidate class names given")
    known = known_phrases or {}
    phrases = {n: known.get(n.lower(), phrase_of(n)) for n in names}
    try:
        embedded = embedder.embed(names, phrases)
    except OOVError as exc:
        raise PredictError(f"candidate class names cannot be embedded: {exc}") from exc
    seen = {s.lower() for s in seen_classes}
    return Candidates(embedded.names, embedded.phrases, embedded.embeddings, [n.lower() in seen for n in names])


def calibrated_scores(p: torch.Tensor, seen: Sequence[bool], gamma: float) -> torch.Tensor:
    """Calibrated stacking: ``p`` ``(N, C)`` with ``gamma`` subtracted from the columns of seen classes."""
    mask = torch.tensor(list(seen), dtype=torch.bool, device=p.device)
    return p - gamma * mask.to(p.dtype)


@dataclass
class Ranked:
    """One ranked candidate: class name, score used for ranking, model probability p, seen flag."""

    class_name: str
    score: float
    probability: float
    seen: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"class", "score", "p", "seen"}``."""
        return {"class": self.class_name, "score": self.score, "p": self.probability, "seen": self.seen}


def rank_candidates(p: np.ndarray, scores: np.ndarray, candidates: Candidates, top: int) -> list[Ranked]:
    """The ``top`` candidates of one video by score (ties: candidate order). ``p``, ``scores``: ``(C,)``."""
    order = sorted(range(len(candidates.names)), key=lambda c: (-float(scores[c]), c))[: max(1, top)]
    return [Ranked(candidates.names[c], float(scores[c]), float(p[c]), candidates.seen[c]) for c in order]


@dataclass
class VideoPrediction:
    """Ranked predictions of one video and the number of windows its feature averages."""

    predictions: list[Ranked]
    windows: int

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"predictions": [...], "windows": n}``."""
        return {"predictions": [r.to_dict() for r in self.predictions], "windows": self.windows}


# --------------------------------------------------------------------------------------------------------------
# the predictor


class Predictor:
    """A trained run ready to score raw videos against any class names.

    Args:
        run_dir: run directory written by ``avzsl-train`` (holds ``model.pt`` and ``config.json``).
        selavi_checkpoint: checkpoint the run's cache was extracted with (sha256 checked).
        random_weights: the run's cache used random weights (the recorded seed is reused).
        word_vectors: word-vector file of the run's class table (fingerprint checked); ``None`` for GloVe.
        device: where the encoders and the model run.
        oov: out-of-vocabulary policy for candidate names (``error``, ``skip``, ``split``); None: the run's.
        phrases: class name -> phrase to embed, for candidates (case-insensitive; overrides the cache's phrases).
        encode_videos: False when only feature caches will be scored (weight options are not needed then).

    Raises:
        PredictError, RunConfigError: the run cannot be repeated as asked (checked before anything heavy loads);
            the encoders are built on first use (:class:`CheckpointError` or :class:`PredictError` then for a
            checkpoint that cannot be loaded or is not the run's).
    """

    def __init__(
        self,
        run_dir: Path,
        selavi_checkpoint: Path | None = None,
        random_weights: bool = False,
        word_vectors: str | Path | None = None,
        device: str | torch.device = "cpu",
        clip_checkpoint: Path | None = None,
        clap_checkpoint: Path | None = None,
        oov: str | None = None,
        phrases: dict[str, str] | None = None,
        encode_videos: bool = True,
    ) -> None:
        from avzsl.pipeline.predict.zero_shot import is_tower_run, tower_run_setup
        from avzsl.pipeline.train.protocol import load_run_model, read_run_config

        self.run_dir = Path(run_dir)
        self.device = torch.device(device)
        self.config = read_run_config(self.run_dir)
        self.model, self.state = load_run_model(self.run_dir)
        self.info = run_cache_info(self.state)
        self.gamma = float(self.state.get("gamma", 0.0))
        self.seen_classes: list[str] = list(self.state.get("seen_classes", []))
        # Cheap checks first: nothing is loaded or decoded before the options are known to match the run.
        self._towers = None  # a CLIP/CLAP run: class names go through the run's text towers
        if is_tower_run(self.info):
            self.request, self._towers, self.embedder = tower_run_setup(
                self.info, clip_checkpoint, clap_checkpoint, random_weights, self.device
            )
        else:
            self.request = encoder_request(self.info, selavi_checkpoint, random_weights, check_weights=encode_videos)
            self.embedder = run_class_embedder(self.info, word_vectors, oov)
        model_cfg = self.state.get("model_config", {})
        if model_cfg.get("text_dim") not in (None, self.embedder.dim):
            raise PredictError(
                f"the word vectors are {self.embedder.dim}-d, the run's model expects {model_cfg['text_dim']}-d"
            )
        self._word_vectors, self._oov = word_vectors, oov  # to load the vectors again after a release
        self.known_phrases = {**self._class_table_phrases(), **{k.lower(): v for k, v in (phrases or {}).items()}}
        if self.request.random_weights and encode_videos:
            _logger.warning(RANDOM_PREDICTIONS_WARNING)
        self.selavi_checkpoint = selavi_checkpoint
        self._encoders: Any = None
        self.model.to(self.device)

    @property
    def encoders(self) -> Any:
        """The run's encoders, built on first use (a checkpoint is hashed and loaded then)."""
        if self._encoders is None and self._towers is not None:
            self._encoders = self._towers.encoders()
        if self._encoders is None:
            self._encoders = load_encoders(self.request, self.selavi_checkpoint, self.device)
        return self._encoders

    def _class_table_phrases(self) -> dict[str, str]:
        """Lower-cased class name -> embedded phrase of the run's cache (empty when the cache is not readable)."""
        from avzsl.pipeline.cache import CacheError, read_class_table

        try:
            table = read_class_table(Path(self.config.cache))
        except (CacheError, OSError, ValueError) as exc:
            if (self.info.get("class_embedder") or {}).get("phrase_source") == "map":
                _logger.warning(
                    "the run's class names were embedded with a phrase map but its cache is not readable (%s): "
                    "seen classes are embedded with their default phrases, which may differ from training",
                    exc,
                )
            return {}
        return {n.lower(): p for n, p in zip(table.names, table.phrases, strict=True)}

    def candidates(self, class_names: Sequence[str]) -> Candidates:
        """Embed ``class_names`` (seen, unseen or new) and mark the run's seen classes."""
        if len(class_names) == 1:
            _logger.warning(
                "only one candidate class (%s): a ranking of one always puts it first and says nothing about the "
                "video; give the alternatives too",
                class_names[0],
            )
        if self.embedder is None:  # released after an earlier call: load the run's vectors again
            self.embedder = run_class_embedder(self.info, self._word_vectors, self._oov)
        return embed_candidates(self.embedder, class_names, self.seen_classes, self.known_phrases)

    def release_word_vectors(self) -> None:
        """Free the word vectors once the candidates are embedded (before the encoders load and videos decode).

        The bundled GloVe vocabulary is ~120 MiB resident that a prediction no longer needs once its candidates
        are embedded; :meth:`candidates` loads it again if called later. A CLIP/CLAP run's text towers are part
        of its encoders and are kept.
        """
        if self._towers is not None or self.embedder is None:
            return
        from avzsl.extractors.text.class_names import release_cached_vectors

        self.embedder = None
        release_cached_vectors()
        gc.collect()

    def calibrate(self, candidates: Candidates, calibration: str) -> bool:
        """Whether calibrated stacking applies: ``auto`` and at least one candidate is a seen class."""
        if calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}, not {calibration!r}")
        return calibration == "auto" and any(candidates.seen)

    def score(self, videos: dict[str, EncodedVideo], candidates: Candidates) -> torch.Tensor:
        """Scores ``(N, C)`` of encoded videos (dict order) against the candidates (p for the paper's method)."""
        raw = self._calibration_space_scores(videos, candidates)
        return raw.exp() if self._scores_are_log_p() else raw

    def _calibration_space_scores(self, videos: dict[str, EncodedVideo], candidates: Candidates) -> torch.Tensor:
        """``(N, C)`` scores in the space the run's gamma shifts (log p for a run calibrated on log p)."""
        from avzsl.model.scoring import predict_scores

        audio = torch.from_numpy(np.stack([v.audio_mean for v in videos.values()])).to(self.device)
        visual = torch.from_numpy(np.stack([v.visual_mean for v in videos.values()])).to(self.device)
        class_emb = torch.from_numpy(candidates.embeddings).to(self.device)
        return predict_scores(self.model, audio, visual, class_emb).cpu()

    def _scores_are_log_p(self) -> bool:
        """Whether the run's scores are log-probabilities (a run calibrated on the paper's log p)."""
        options = getattr(self.model, "options", None)
        return (getattr(self.model, "calibrated_on", "scores") == "calibration_scores"
                and getattr(options, "calibrate_on", "") == "log")

    def rank(
        self, videos: dict[str, EncodedVideo], candidates: Candidates, calibrate: bool, top: int
    ) -> dict[str, VideoPrediction]:
        """Ranked predictions of encoded videos (or cached features) against the candidates, in dict order."""
        results: dict[str, VideoPrediction] = {}
        if videos:
            # Ranked and calibrated in the run's calibration space; the reported p stays a probability.
            raw = self._calibration_space_scores(videos, candidates)
            p = raw.exp() if self._scores_are_log_p() else raw
            scores = calibrated_scores(raw, candidates.seen, self.gamma) if calibrate else raw
            for row, (key, video) in enumerate(videos.items()):
                ranked = rank_candidates(p[row].numpy(), scores[row].numpy(), candidates, top)
                results[key] = VideoPrediction(ranked, video.windows)
        return results

    def predict(
        self,
        paths: Sequence[str | Path],
        class_names: Sequence[str] | Candidates,
        top: int = 5,
        calibration: str = "auto",
        workers: int = 1,
        batch_size: int = 16,
    ) -> dict[str, VideoPrediction | VideoFailure]:
        """Rank ``class_names`` for each video.

        Args:
            paths: video files.
            class_names: candidate classes (any names the word vectors know), or :meth:`candidates` of them.
            top: predictions kept per video.
            calibration: ``auto`` (subtract gamma from seen-class scores when seen classes are candidates) or
                ``off``.
            workers / batch_size: decoding processes and windows per encoder forward.

        Returns:
            path -> :class:`VideoPrediction`, or :class:`VideoFailure` for a video that could not be used.
        """
        candidates = class_names if isinstance(class_names, Candidates) else self.candidates(class_names)
        calibrate = self.calibrate(candidates, calibration)
        if calibrate:
            _logger.info(
                "calibrated stacking: gamma %.4g subtracted from the scores of %d seen candidate(s)",
                self.gamma,
                sum(candidates.seen),
            )
        encoded = encode_videos(
            [str(p) for p in paths],
            self.encoders,
            self.request.decoder,
            self.request.windows,
            workers=workers,
            batch_size=batch_size,
        )
        good = {path: item for path, item in encoded.items() if isinstance(item, EncodedVideo)}
        results: dict[str, VideoPrediction | VideoFailure] = dict(self.rank(good, candidates, calibrate, top))
        for path, item in encoded.items():
            if isinstance(item, VideoFailure):
                _logger.warning("%s: %s", path, item.message())
                results[path] = item
        return {path: results[path] for path in encoded}
