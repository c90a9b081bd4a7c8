"""Zero-shot prediction on raw videos with a trained run: decode, encode, embed any class names, score, rank.

Everything that produced the run's training features is repeated from the run's record of its cache
(``cache_info`` in ``model.pt``, checked by :mod:`avzsl.pipeline.predict.records`): the encoder (name and spec
hash), its weights (checkpoint sha256, or the seed of random weights), the decoder and the window schedule.
Decoding and encoding go through the extraction code (:func:`avzsl.pipeline.predict.ranking.encode_videos`), so a
video's feature is exactly what ``avzsl-extract`` would have stored. Candidate class names are embedded with the
same word vectors as the cache's class table (bundled GloVe, or a word2vec/fastText file whose fingerprint must
match) and its OOV policy; a class of the run's cache keeps the phrase it was embedded with in training (recorded
in ``model.pt``).

Scores are the model's fused probabilities p over the candidates (eq. 6/12), ranked on the run's calibration scale
(log p for the paper's method). The run's gamma (chosen on stage-1 validation) is subtracted from the scores of seen
candidates only with ``calibration="full"``: on new media it was measured to lower top-1
(:mod:`avzsl.pipeline.predict.calibration`, ``docs/predict.md``).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from avzsl.extractors.text.class_names import release_cached_vectors
from avzsl.pipeline.cache import CacheError, read_class_table
from avzsl.pipeline.core.errors import InvalidValueError
from avzsl.pipeline.predict.calibration import CALIBRATIONS, CalibrationPlan, benchmark_classes, plan_calibration
from avzsl.pipeline.predict.explain import Scoring, rank_videos
from avzsl.pipeline.predict.ranking import (
    Candidates,
    EncodedVideo,
    VideoFailure,
    VideoPrediction,
    embed_candidates,
    encode_videos,
    usable_videos,
    with_failures,
)
from avzsl.pipeline.predict.records import (
    PredictError,
    encoder_request,
    load_encoders,
    run_cache_info,
    run_class_embedder,
)
from avzsl.pipeline.predict.zero_shot import is_tower_run, tower_run_setup
from avzsl.pipeline.run.config import read_run_config
from avzsl.pipeline.run.identity import check_run_record
from avzsl.pipeline.run.model_file import load_run_model, run_class_phrases

_logger = logging.getLogger(__name__)

RANDOM_PREDICTIONS_WARNING = (
    "the run was trained on features of RANDOM encoder weights (--random-weights): these predictions are "
    "MEANINGLESS and only exercise the pipeline"
)


class Predictor:
    """A trained run ready to score raw videos against any class names.

    Args:
        run_dir: run directory written by ``avzsl-train`` (holds ``model.pt`` and ``config.json``).
        selavi_checkpoint: checkpoint the run's cache was extracted with (sha256 checked).
        random_weights: the run's cache used random weights (the recorded seed is reused).
        word_vectors: word-vector file of the run's class table (fingerprint checked); ``None`` for GloVe.
        device: where the encoders and the model run.
        oov: out-of-vocabulary policy for candidate names (``error``, ``skip``, ``split``); None: the run's.
        phrases: class name -> phrase to embed, for candidates (case-insensitive; overrides the run's phrases).
        encode_videos: False when only feature caches will be scored (weight options are not needed then).

    Raises:
        PredictError, RunConfigError: the run cannot be repeated as asked, or its ``config.json`` or ``model.pt``
            is not the one it was trained with (checked before anything heavy loads);
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
        self.run_dir = Path(run_dir)
        self.device = torch.device(device)
        self.config = read_run_config(self.run_dir)
        self.model, self.state = load_run_model(self.run_dir)
        # config.json and model.pt must be the ones the run was trained with (identity.json); the cache and the
        # split folder are not inputs of a prediction (model.pt records what is needed from the cache).
        check_run_record(self.run_dir, self.state)
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
        self.known_phrases = {**self._training_phrases(), **{k.lower(): v for k, v in (phrases or {}).items()}}
        if self.request.random_weights and encode_videos:
            _logger.warning(RANDOM_PREDICTIONS_WARNING)
        self.selavi_checkpoint = selavi_checkpoint
        self._encoders: Any = None
        self._benchmark: list[str] | None = None  # the run's benchmark candidate list, read on first use
        self._logged_plan: tuple[str, tuple[str, ...]] | None = None
        self.model.to(self.device)

    @property
    def encoders(self) -> Any:
        """The run's encoders, built on first use (a checkpoint is hashed and loaded then)."""
        if self._encoders is None and self._towers is not None:
            self._encoders = self._towers.encoders()
        if self._encoders is None:
            self._encoders = load_encoders(self.request, self.selavi_checkpoint, self.device)
        return self._encoders

    def _training_phrases(self) -> dict[str, str]:
        """Lower-cased class name -> phrase embedded in training, for every class of the run's cache.

        Recorded in ``model.pt``; a run written before that records none, and its cache's class table is read
        instead (empty when the cache is not readable, with a warning when the run used a phrase map).
        """
        recorded = run_class_phrases(self.state)
        if recorded is not None:
            return {n.lower(): p for n, p in recorded.items()}
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

    def candidates(self, class_names: Sequence[str], phrases: Mapping[str, str] | None = None) -> Candidates:
        """Embed ``class_names`` (seen, unseen or new) and mark the run's seen classes.

        ``phrases`` (class name -> phrase, case-insensitive) gives the phrase of a name the run has none for (e.g.
        a benchmark's released phrase of "Applyingsunscreen"); the run's own phrases take precedence.
        """
        if len(class_names) == 1:
            _logger.warning(
                "only one candidate class (%s): a ranking of one always puts it first and says nothing about the "
                "video; give the alternatives too",
                class_names[0],
            )
        if self.embedder is None:  # released after an earlier call: load the run's vectors again
            self.embedder = run_class_embedder(self.info, self._word_vectors, self._oov)
        known = {**{k.lower(): v for k, v in (phrases or {}).items()}, **self.known_phrases}
        return embed_candidates(self.embedder, class_names, self.seen_classes, known)

    def release_word_vectors(self) -> None:
        """Free the word vectors once the candidates are embedded (before the encoders load and videos decode).

        The bundled GloVe vocabulary is ~120 MiB resident that a prediction no longer needs once its candidates
        are embedded; :meth:`candidates` loads it again if called later. A CLIP/CLAP run's text towers are part
        of its encoders and are kept.
        """
        if self._towers is not None or self.embedder is None:
            return
        self.embedder = None
        release_cached_vectors()
        gc.collect()

    def calibrate(self, candidates: Candidates, calibration: str) -> CalibrationPlan:
        """The calibration shift for these candidates under ``calibration`` (``auto``, ``full`` or ``off``).

        Raises:
            InvalidValueError: an unknown mode.
        """
        if calibration not in CALIBRATIONS:
            raise InvalidValueError(f"calibration must be one of {CALIBRATIONS}, not {calibration!r}")
        plan = plan_calibration(calibration, candidates.names, candidates.seen, self.gamma, self.score_space(),
                                self.benchmark_list())
        key = (calibration, tuple(candidates.names))
        if key != self._logged_plan:  # the CLI asks for caches and videos of one prediction: say it once
            plan.log()
            self._logged_plan = key
        return plan

    def benchmark_list(self) -> list[str] | None:
        """The run's benchmark candidate list (the test classes gamma is applied to), or None when unknown."""
        if self._benchmark is None:
            self._benchmark = benchmark_classes(self.state, self.config) or []
        return self._benchmark or None

    def score_space(self) -> str:
        """The scale of the run's ranking scores: ``log p`` (the paper's method calibrated on log p), ``p`` (the
        paper's method calibrated on p) or ``score`` (a method whose scores are not probabilities)."""
        options = getattr(self.model, "options", None)
        if not hasattr(options, "calibrate_on"):  # only the paper's method scores probabilities
            return "score"
        if getattr(self.model, "calibrated_on", "scores") == "calibration_scores" and options.calibrate_on == "log":
            return "log p"
        return "p"

    def scoring(self, candidates: Candidates, calibration: CalibrationPlan | bool) -> Scoring:
        """The run's model, the candidates and the calibration plan (True/False: the run's gamma / no shift)."""
        plan = self._plan(candidates, calibration)
        space = plan.space
        return Scoring(self.model, candidates, plan.shift if plan.applied else None, space == "log p", self.device,
                       probabilities=space != "score", score_is=plan.score_is())

    def _plan(self, candidates: Candidates, calibration: CalibrationPlan | bool) -> CalibrationPlan:
        if not isinstance(calibration, bool):
            return calibration
        return plan_calibration("full" if calibration else "off", candidates.names, candidates.seen, self.gamma,
                                self.score_space(), None)

    def rank(
        self, videos: dict[str, EncodedVideo], candidates: Candidates, calibration: CalibrationPlan | bool, top: int
    ) -> dict[str, VideoPrediction]:
        """Ranked predictions of encoded videos (or cached features) against the candidates, in dict order.

        ``calibration``: a :meth:`calibrate` plan, or True/False for the run's gamma / no shift. Ranked in the
        run's calibration space minus the plan's shift, with p and log p beside the score; each prediction carries
        the branch scores and the window support (:mod:`avzsl.pipeline.predict.explain`).
        """
        return rank_videos(self.scoring(candidates, calibration), videos, top)

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
            calibration: ``auto`` (default: no shift), ``full`` (the run's gamma subtracted from every seen candidate;
                a warning when the candidates are not the run's benchmark list) or ``off`` (no shift).
            workers / batch_size: decoding processes and windows per encoder forward.

        Returns:
            path -> :class:`VideoPrediction`, or :class:`VideoFailure` for a video that could not be used.
        """
        candidates = class_names if isinstance(class_names, Candidates) else self.candidates(class_names)
        plan = self.calibrate(candidates, calibration)
        if plan.applied:
            _logger.info("calibrated stacking: %.4g subtracted from the scores of %d seen candidate(s)", plan.shift,
                         sum(candidates.seen))
        encoded = encode_videos(
            [str(p) for p in paths],
            self.encoders,
            self.request.decoder,
            self.request.windows,
            workers=workers,
            batch_size=batch_size,
        )
        return with_failures(encoded, self.rank(usable_videos(encoded), candidates, plan, top))
