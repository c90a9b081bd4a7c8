"""Scores, ranking and their explanation: one computation for ``avzsl-predict`` (JSON, tables, ``--explain``) and
the web page of ``avzsl-app``.

For a set of videos and candidate classes, :func:`rank_videos` computes

- the model's scores of each video's feature (the mean over its 1-s windows, as the cache stores it), minus the
  calibration plan's shift for seen candidates (:mod:`avzsl.pipeline.predict.calibration`), ranked, with p and
  log p beside them (None for a scorer without probabilities);
- beside each ranked class the scores of the model's two branches (eq. 3-4, :mod:`avzsl.model.branches`): what the
  visual branch saw and what the audio branch heard;
- the support of each window: the window's own features (``EncodedVideo.audio_seq``/``visual_seq``) scored by the
  same model, calibration and candidates, giving the class the window ranks first and the p of each of the video's
  ranked classes in that window. A cached feature (no windows kept) has no window support.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from avzsl.model.branches import BranchScores, branch_scores
from avzsl.model.scoring import predict_scores
from avzsl.pipeline.predict.ranking import (
    Candidates,
    VideoPrediction,
    WindowSupport,
    rank_candidates,
)


@dataclass
class ScoreTable:
    """Scores of N rows (videos or windows) against C candidates, ``(N, C)`` float arrays unless said otherwise.

    Attributes:
        p / log_p: the model's probability p (eq. 6) and its logarithm; ``None`` for a scorer without probabilities
            (a cosine or a compatibility).
        score: what ranks the candidates: the model's score in its calibration space minus ``shift``.
        shift: ``(C,)`` the calibration shift of each candidate (the plan's shift for seen classes, else 0).
        visual / audio: the branch scores (``None`` for a method without two branches).
        branches: what the branch scores are (``"softmax"``, ``"cosine"``), or ``None``.
    """

    p: np.ndarray | None
    log_p: np.ndarray | None
    score: np.ndarray
    shift: np.ndarray
    visual: np.ndarray | None
    audio: np.ndarray | None
    branches: str | None


@dataclass
class Scoring:
    """A model and the candidates it ranks, with the calibration that applies.

    Attributes:
        model: a run's method (or the bare network), or a frozen zero-shot scorer.
        candidates: the embedded candidate classes.
        gamma: the shift subtracted from the scores of seen candidates (a
            :class:`~avzsl.pipeline.predict.calibration.CalibrationPlan`'s ``shift``); ``None``: no shift.
        log_p: the model's scores are log-probabilities (a run calibrated on log p): ``p = exp(score)``.
        device: where the model runs.
        probabilities: the model's scores are probabilities (or their logarithms); False for a cosine, whose p and
            log p are then reported as None.
        score_is: what the ranking score is, in words (the ``score_is`` of every prediction).
    """

    model: Any
    candidates: Candidates
    gamma: float | None = None
    log_p: bool = False
    device: torch.device | str = "cpu"
    probabilities: bool = True
    score_is: str = ""

    def table(self, audio: np.ndarray, visual: np.ndarray) -> ScoreTable:
        """Scores of audio ``(N, D_A)`` and visual ``(N, D_V)`` features."""
        a = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)).to(self.device)
        v = torch.from_numpy(np.ascontiguousarray(visual, dtype=np.float32)).to(self.device)
        class_emb = torch.from_numpy(self.candidates.embeddings).to(self.device)
        raw = predict_scores(self.model, a, v, class_emb).cpu()
        p = log_p = None
        if self.probabilities:  # p and log p beside the ranking score, whichever space the run ranks in
            p = raw.exp() if self.log_p else raw
            log_p = raw if self.log_p else raw.clamp_min(1e-45).log()
        shift = torch.tensor(self.candidates.seen, dtype=raw.dtype) * (self.gamma or 0.0)
        score = raw - shift
        branches: BranchScores | None = branch_scores(self.model, a, v, class_emb)

        def array(t: torch.Tensor | None) -> np.ndarray | None:
            return None if t is None else t.cpu().numpy()

        return ScoreTable(array(p), array(log_p), score.numpy(), shift.numpy(),
                          None if branches is None else array(branches.visual),
                          None if branches is None else array(branches.audio),
                          None if branches is None else branches.kind)


def window_support(scoring: Scoring, video: Any, ranked_classes: list[str]) -> list[WindowSupport]:
    """Per-window support of one video: each window's features scored alone.

    Args:
        scoring: the model, candidates and calibration of the video's prediction.
        video: an :class:`~avzsl.pipeline.predict.ranking.EncodedVideo` (``audio_seq``/``visual_seq`` ``(T, D)``,
            ``window_sec`` ``(T, 2)``); anything without sequences gives ``[]``.
        ranked_classes: the video's ranked classes, whose p is reported per window (none for a scorer without
            probabilities: its windows only say which class they rank first).
    """
    audio_seq = getattr(video, "audio_seq", None)
    visual_seq = getattr(video, "visual_seq", None)
    if audio_seq is None or visual_seq is None or len(audio_seq) == 0:
        return []
    table = scoring.table(audio_seq, visual_seq)
    names = scoring.candidates.names
    column = {name: c for c, name in enumerate(names)}
    seconds = np.asarray(video.window_sec, dtype=np.float64)
    support = []
    for t in range(table.score.shape[0]):
        best = int(np.argmax(table.score[t]))  # ties: the first candidate, as the ranking breaks them
        support.append(WindowSupport(
            start=float(seconds[t, 0]), end=float(seconds[t, 1]), top=names[best],
            p={} if table.p is None else {name: float(table.p[t, column[name]]) for name in ranked_classes},
        ))
    return support


def rank_videos(scoring: Scoring, videos: Mapping[str, Any], top: int) -> dict[str, VideoPrediction]:
    """Ranked, explained predictions of encoded videos (or cached features), in dict order.

    Args:
        scoring: the model, candidates and calibration.
        videos: key -> an object with ``audio_mean``/``visual_mean`` ``(D,)`` and ``windows``; an
            :class:`~avzsl.pipeline.predict.ranking.EncodedVideo` also gets its window support.
        top: predictions kept per video.
    """
    if not videos:
        return {}
    table = scoring.table(np.stack([v.audio_mean for v in videos.values()]),
                          np.stack([v.visual_mean for v in videos.values()]))
    results: dict[str, VideoPrediction] = {}
    for row, (key, video) in enumerate(videos.items()):
        ranked = rank_candidates(
            None if table.p is None else table.p[row], table.score[row], scoring.candidates, top,
            visual=None if table.visual is None else table.visual[row],
            audio=None if table.audio is None else table.audio[row],
            log_p=None if table.log_p is None else table.log_p[row],
            shift=table.shift,
        )
        support = window_support(scoring, video, [r.class_name for r in ranked])
        results[key] = VideoPrediction(ranked, video.windows, scoring.score_is, table.branches, support)
    return results


def results_document(results: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON document of ``avzsl-predict --json`` (and of the web page's downloads): key -> the prediction's
    ``to_dict()``, or ``{"error": message, "status": status}`` for a video that could not be used."""
    return {
        key: item.to_dict() if isinstance(item, VideoPrediction) else {"error": item.message(), "status": item.status}
        for key, item in results.items()
    }
