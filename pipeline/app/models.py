"""The models the page offers, loaded once when the server starts: trained runs and the zero-shot towers.

Each model is a :class:`Model`: a name shown on the page, and a ``predict`` that ranks class names for video files
with the same code as ``avzsl-predict`` (:class:`~avzsl.pipeline.predict.predictor.Predictor` for a run,
:class:`~avzsl.pipeline.predict.zero_shot.ZeroShotPredictor` for the towers), returning the same JSON document. The
encoders, the towers and the word vectors are built at start (not per request). Requests are computed one at a
time (one lock): a request waits for the one before it, the page itself keeps answering, and every request gets its
own results.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from avzsl.extractors.stream import default_batch_size
from avzsl.pipeline.app.classlists import phrases_for
from avzsl.pipeline.predict.explain import results_document
from avzsl.pipeline.predict.predictor import Predictor
from avzsl.pipeline.predict.zero_shot import ZeroShotPredictor

_logger = logging.getLogger(__name__)

ZERO_SHOT_NAME = "zero-shot (CLIP/CLAP text towers)"


@dataclass
class WeightOptions:
    """The weight options of ``avzsl-predict``, for every run and the towers (``--selavi-checkpoint`` ...)."""

    selavi_checkpoint: Path | None = None
    random_weights: bool = False
    word_vectors: str | None = None
    clip_checkpoint: Path | None = None
    clap_checkpoint: Path | None = None
    encoder: str = "clip_clap"
    text_templates: str = "plain"
    audio_weight: float = 0.5


@dataclass
class Prediction:
    """One request's answer: the ``avzsl-predict --json`` document and how it was computed.

    Attributes:
        document: video key -> prediction or error (the JSON of ``avzsl-predict --json``).
        gamma: the calibration subtracted from seen-class scores, or ``None`` when it did not apply.
        seconds: compute time of the request.
    """

    document: dict[str, Any]
    gamma: float | None
    seconds: float


@dataclass
class Model:
    """A loaded model the page can choose.

    Attributes:
        name: shown on the page and sent back with a request (unique).
        kind: ``"run"`` or ``"zero-shot"``.
        source: the run directory, or the encoder of the towers.
        predictor: the loaded :class:`Predictor` or :class:`ZeroShotPredictor`.
        random_weights: predictions are meaningless (random encoder weights; tests).
    """

    name: str
    kind: str
    source: str
    predictor: Any
    random_weights: bool = False
    seen_classes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        """JSON form for the page."""
        return {"name": self.name, "kind": self.kind, "source": self.source, "random_weights": self.random_weights,
                "seen_classes": self.seen_classes}


def _run_names(runs: Sequence[Path]) -> list[str]:
    """Unique page names of runs: the folder and its parent (``demo_out/run``), the whole path where two share
    those."""
    names = ["/".join(Path(r).resolve().parts[-2:]) for r in runs]
    return [str(Path(r).resolve()) if names.count(n) > 1 else n for r, n in zip(runs, names, strict=True)]


def load_models(runs: Sequence[Path], zero_shot: bool, weights: WeightOptions,
                device: torch.device) -> list[Model]:
    """Load every run and, with ``zero_shot``, the towers: encoders built and word vectors read now.

    Raises:
        PredictError, RunConfigError, CheckpointError: as ``avzsl-predict`` for the same options.
    """
    models: list[Model] = []
    for run, name in zip(runs, _run_names(runs), strict=True):
        predictor = Predictor(Path(run), selavi_checkpoint=weights.selavi_checkpoint,
                              random_weights=weights.random_weights, word_vectors=weights.word_vectors,
                              device=device, clip_checkpoint=weights.clip_checkpoint,
                              clap_checkpoint=weights.clap_checkpoint)
        _ = predictor.encoders  # built (and the checkpoint hashed) now, not on the first request
        if len(predictor.seen_classes) >= 2:  # reads the word vectors now (kept: every request embeds names)
            predictor.candidates(predictor.seen_classes[:2])
        _logger.info("loaded run %s (%s)", name, run)
        models.append(Model(name, "run", str(run), predictor, predictor.request.random_weights,
                            list(predictor.seen_classes)))
    if zero_shot:
        towers = ZeroShotPredictor(weights.clip_checkpoint, weights.clap_checkpoint, weights.random_weights,
                                   weights.encoder, weights.text_templates, weights.audio_weight, device)
        _logger.info("loaded the zero-shot towers (%s)", weights.encoder)
        models.append(Model(ZERO_SHOT_NAME, "zero-shot", weights.encoder, towers, weights.random_weights))
    return models


class Models:
    """The loaded models by name, computing one request at a time."""

    def __init__(self, models: Sequence[Model]) -> None:
        if not models:
            raise ValueError("no model to serve: give --run RUN (several allowed) or --zero-shot")
        self.by_name = {m.name: m for m in models}
        self._lock = threading.Lock()

    def describe(self) -> list[dict[str, Any]]:
        """The models for the page, in the order given."""
        return [m.describe() for m in self.by_name.values()]

    def predict(self, name: str, paths: Sequence[str], class_names: Sequence[str], top: int) -> Prediction:
        """Rank ``class_names`` for video files with the named model (calibration ``auto`` for a run).

        Raises:
            KeyError: no model of that name.
            PredictError: class names that cannot be embedded.
        """
        model = self.by_name[name]
        with self._lock:
            started = time.perf_counter()
            predictor = model.predictor
            batch = default_batch_size(predictor.device)
            gamma = None
            candidates = predictor.candidates(list(class_names), phrases_for(list(class_names)))
            if model.kind == "run":
                plan = predictor.calibrate(candidates, "auto")
                gamma = plan.shift if plan.applied else None
            results = predictor.predict(paths, candidates, top=top, workers=0, batch_size=batch)
            seconds = time.perf_counter() - started
        return Prediction(results_document(results), gamma, seconds)
