"""What ``avzsl-predict`` classifies: video files, folders of videos (labeled or not) and feature caches.

Inputs are resolved before anything heavy loads. A path that does not exist is one failure of the batch (status
``not_a_file``), reported beside the others like an unreadable file; it does not stop the batch. A feature cache (a
folder with ``cache.json``, e.g. one ``avzsl-extract`` wrote from an unlabeled folder) is scored from its stored
per-video features without decoding anything, provided it was extracted exactly like the run's training cache (same
encoder spec, weights and window schedule).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avzsl.pipeline.cache import load_features, read_cache_info
from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.data.video_list import VIDEO_EXTENSIONS

_logger = logging.getLogger(__name__)


@dataclass
class PredictInputs:
    """Resolved inputs: video files (in the order given, folders expanded sorted), feature caches, and the paths
    given that do not exist."""

    videos: list[str] = field(default_factory=list)
    caches: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def videos_in_folder(folder: Path) -> list[str]:
    """Every file with a video extension under ``folder`` (recursively, sorted; symlinked folders not followed)."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames.sort()
        found += [str(Path(dirpath) / n) for n in sorted(filenames) if Path(n).suffix.lower() in VIDEO_EXTENSIONS]
    return found


def resolve_inputs(items: Sequence[str | Path]) -> PredictInputs:
    """Video files, folders of videos and feature caches -> :class:`PredictInputs`.

    A path that does not exist goes to ``missing`` (logged), not to an error: the other inputs are still predicted.

    Raises:
        UserError: a folder with no video file in it.
    """
    inputs = PredictInputs()
    for item in items:
        path = Path(item)
        if (path / "cache.json").is_file():
            inputs.caches.append(path)
        elif path.is_dir():
            found = videos_in_folder(path)
            if not found:
                raise UserError(f"{path}: folder holds no video file (extensions: mp4, mkv, avi, ...)")
            _logger.info("%s: %d video file(s)", path, len(found))
            inputs.videos += found
        elif path.is_file():
            inputs.videos.append(str(path))
        else:
            _logger.warning("%s: no such file or folder", path)
            inputs.missing.append(str(path))
    return inputs


@dataclass
class CachedVideo:
    """A cached video's mean features, scored like an encoded video (``windows`` 0: not recorded in the index)."""

    audio_mean: np.ndarray
    visual_mean: np.ndarray
    windows: int = 0


def check_cache_matches_run(cache_dir: Path, run_info: dict[str, Any]) -> None:
    """Refuse a cache whose features were not extracted like the run's training features.

    Raises:
        UserError: different encoder spec, weights (sha256 or random seed) or window schedule, naming what differs.
    """
    info = read_cache_info(cache_dir)

    def facts(record: dict[str, Any]) -> dict[str, Any]:
        weights = record.get("weights") or {}
        extraction = record.get("extraction") or {}
        return {
            "encoder spec": (record.get("encoder") or {}).get("spec_hash"),
            "weights sha256": weights.get("sha256"),
            "random seed": weights.get("random_seed", extraction.get("seed"))
            if weights.get("sha256") == "random"
            else None,
            "window schedule": extraction.get("windows", "clean"),
        }

    ours, theirs = facts(info), facts(run_info)
    differ = [f"{k} {ours[k]!r} (run: {theirs[k]!r})" for k in ours if ours[k] != theirs[k]]
    if differ:
        raise UserError(
            f"{cache_dir}: its features were not extracted like the run's training features: " + "; ".join(differ)
        )


def predict_caches(
    predictor: Any, caches: Sequence[Path], candidates: Any, calibration: str = "auto", top: int = 5
) -> dict[str, Any]:
    """Rank the candidates for every video of each cache, from the stored mean features (no decoding).

    Args:
        predictor: a :class:`avzsl.pipeline.predict.predictor.Predictor`.
        caches: feature cache folders (checked with :func:`check_cache_matches_run` first, all of them).
        candidates: ``predictor.candidates(...)``.

    Returns:
        ``"CACHE:video_id"`` -> :class:`avzsl.pipeline.predict.ranking.VideoPrediction`, caches in order, videos in
        index order.
    """
    for cache in caches:
        check_cache_matches_run(cache, predictor.info)
    calibrate = predictor.calibrate(candidates, calibration)
    results: dict[str, Any] = {}
    for cache in caches:
        table = load_features(cache)
        videos = {
            f"{cache}:{vid}": CachedVideo(table.audio[i].numpy(), table.visual[i].numpy())
            for i, vid in enumerate(table.video_ids)
        }
        _logger.info("%s: scoring %d cached video(s)", cache, len(videos))
        results.update(predictor.rank(videos, candidates, calibrate, top))
    return results
