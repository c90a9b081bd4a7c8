"""Encoding videos as extraction does, embedding candidate class names, calibrated scores and ranking.

Decoding and encoding go through the extraction code (:func:`avzsl.extractors.stream.encode_window_stream`),
so a video's feature is exactly what ``avzsl-extract`` would have stored: the mean over its windows. The value
types here (:class:`EncodedVideo`, :class:`VideoFailure`, :class:`Candidates`, :class:`VideoPrediction`) are shared
by the run predictor and the zero-shot predictor.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avzsl.extractors.decode.probe import probe_many
from avzsl.extractors.stream import WindowCountError, encode_window_stream, pool_windows, stack_windows
from avzsl.extractors.text.class_names import OOVError, phrase_of
from avzsl.pipeline.data.class_names import checked_name_list
from avzsl.pipeline.predict.records import PredictError

_logger = logging.getLogger(__name__)


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
    """Class names from a comma-separated string (blank items dropped, whitespace stripped), in NFC.

    Raises:
        PredictError: a name the class-name rule refuses, or one class named twice in any spelling
            (:mod:`avzsl.pipeline.data.class_names`).
    """
    items = [(part.strip(), f"item {k}") for k, part in enumerate(text.split(","), start=1) if part.strip()]
    return checked_name_list(items, "--classes", PredictError)


def read_class_file(path: Path) -> list[str]:
    """Class names from a file, in NFC: one per line; blank lines and lines starting with ``#`` are ignored.

    Raises:
        PredictError: no such file, or a name the class-name rule refuses, or one class listed twice.
    """
    path = Path(path)
    if not path.is_file():
        raise PredictError(f"{path}: class file not found")
    # Split on line ends only: str.splitlines would also break a name at a vertical tab or form feed, hiding it.
    lines = re.split(r"\r\n|\r|\n", path.read_text(encoding="utf-8-sig"))
    items = [(line.strip(), f"line {k}") for k, line in enumerate(lines, start=1)]
    return checked_name_list([(n, k) for n, k in items if n and not n.startswith("#")], str(path), PredictError)


def embed_candidates(
    embedder: Any,
    names: Sequence[str],
    seen_classes: Sequence[str],
    known_phrases: dict[str, str] | None = None,
) -> Candidates:
    """Embed candidate class names and mark the run's seen classes (case-insensitive).

    Args:
        embedder: the run's class-name embedder (:func:`avzsl.pipeline.predict.records.run_class_embedder`).
        names: C class names, unique case-insensitively.
        seen_classes: the run's seen classes (``state["seen_classes"]``).
        known_phrases: lower-cased class name -> phrase embedded in training (recorded in ``model.pt``); a
            candidate found there is embedded with the same phrase as in training, any other with the default
            ``phrase_of(name)``.
    """
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
    """One ranked candidate.

    Attributes:
        class_name: the candidate's name.
        score: the ranking score (what :attr:`VideoPrediction.score_is` says it is).
        probability: p, the model's probability of the class over the candidate list; None when the scorer gives
            no probability (a cosine).
        seen: the class is a seen (trained-on) class of the run.
        visual / audio: the scores of the model's visual and audio branches for this class (None for a method
            without two branches).
        log_p: log p (None without a probability).
        shift: the calibration shift subtracted from this candidate's score (0 for unseen classes or no calibration).
    """

    class_name: str
    score: float
    probability: float | None
    seen: bool
    visual: float | None = None
    audio: float | None = None
    log_p: float | None = None
    shift: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"class", "score", "p", "log_p", "shift", "seen", "visual", "audio"}`` (``p``/``log_p``
        null without a probability)."""
        return {"class": self.class_name, "score": self.score, "p": self.probability, "log_p": self.log_p,
                "shift": self.shift, "seen": self.seen, "visual": self.visual, "audio": self.audio}


def rank_candidates(
    p: np.ndarray | None,
    scores: np.ndarray,
    candidates: Candidates,
    top: int,
    *,
    visual: np.ndarray | None = None,
    audio: np.ndarray | None = None,
    log_p: np.ndarray | None = None,
    shift: np.ndarray | None = None,
) -> list[Ranked]:
    """The ``top`` candidates of one video by score (ties: candidate order).

    Args:
        p / log_p: ``(C,)`` probabilities and their logarithms, or None (a scorer without probabilities).
        scores: ``(C,)`` ranking scores.
        visual / audio: ``(C,)`` branch scores, or None (a method without two branches).
        shift: ``(C,)`` calibration shift subtracted from each candidate's score (None: zeros).
    """
    order = sorted(range(len(candidates.names)), key=lambda c: (-float(scores[c]), c))[: max(1, top)]

    def value(a: np.ndarray | None, c: int) -> float | None:
        return None if a is None else float(a[c])

    return [
        Ranked(candidates.names[c], float(scores[c]), value(p, c), candidates.seen[c], value(visual, c),
               value(audio, c), value(log_p, c), 0.0 if shift is None else float(shift[c]))
        for c in order
    ]


@dataclass
class WindowSupport:
    """What one window of a video says on its own: its ``start``/``end`` seconds, the candidate it ranks first
    (``top``, by the same calibrated score as the video) and ``p``, the model's p of each of the video's ranked
    classes in this window alone (empty for a scorer without probabilities)."""

    start: float
    end: float
    top: str
    p: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"start", "end", "top", "p": {class: p}}``."""
        return {"start": self.start, "end": self.end, "top": self.top, "p": dict(self.p)}


@dataclass
class VideoPrediction:
    """Ranked predictions of one video, the number of windows its feature averages, what its score is
    (``score_is``), what the branch scores of its predictions are (``branches``: ``"softmax"``, ``"cosine"`` or
    ``None``, see :mod:`avzsl.model.branches`) and the support of each window (empty for a cached feature, which
    keeps no windows)."""

    predictions: list[Ranked]
    windows: int
    score_is: str = ""
    branches: str | None = None
    window_support: list[WindowSupport] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``{"predictions": [...], "windows": n, "score_is": "...", "branches": kind,
        "window_support": [...]}``."""
        return {"predictions": [r.to_dict() for r in self.predictions], "windows": self.windows,
                "score_is": self.score_is, "branches": self.branches,
                "window_support": [w.to_dict() for w in self.window_support]}


def usable_videos(encoded: Mapping[str, EncodedVideo | VideoFailure]) -> dict[str, EncodedVideo]:
    """The videos of :func:`encode_videos` that have features, in order."""
    return {path: item for path, item in encoded.items() if isinstance(item, EncodedVideo)}


def with_failures(
    encoded: Mapping[str, EncodedVideo | VideoFailure], predicted: Mapping[str, VideoPrediction]
) -> dict[str, VideoPrediction | VideoFailure]:
    """The predictions of the usable videos plus the failure of every other one (logged), in the order of
    ``encoded``."""
    results: dict[str, VideoPrediction | VideoFailure] = dict(predicted)
    for path, item in encoded.items():
        if isinstance(item, VideoFailure):
            _logger.warning("%s: %s", path, item.message())
            results[path] = item
    return {path: results[path] for path in encoded}
