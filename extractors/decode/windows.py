"""One-second window schedules and the frame pattern inside a window (SeLaVi recipe, avgzsl_conventions.md §4).

Schedules (``start_s`` of window ``i``; every window lasts ``WINDOW_S`` = 1 s):

- ``"clean"``: ``N = floor(duration_s)`` windows at ``start_i = i`` seconds: a plain 1-s stride that covers the
  whole video. A 1-ms tolerance absorbs durations like 2.9999 s from rounded time bases.
- ``"avca"``: the reference formula of ExplainableML/AVCA-GZSL (``selavi_feature_extraction``):
  ``N = int(frames / fps) - 1`` and ``start_i = int((frames - fps) * i / (10 * (N // 10 + 1)))`` in frame units,
  converted to seconds as ``start_i / fps``. It needs >= 2 s of video for one window and on long videos never
  reaches the end; kept only for parity with the released features.

Frames inside a window: 30 frames at offsets ``linspace(0, fps - 1, 30)`` from the window's first frame, truncated
to integers (the reference does ``torch.linspace(...).long()``). Audio: the 1-s segment starting at sample
``round(start_s * 44100)`` (the reference's ``np.round(fr_sec * sample_rate)``).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from avzsl.extractors.choices import SCHEDULES

WINDOW_S = 1.0
FRAMES_PER_WINDOW = 30
AUDIO_RATE = 44100
AUDIO_SAMPLES = AUDIO_RATE  # one second
_DURATION_TOL_S = 1e-3


class _HasTiming(Protocol):
    duration_s: float | None
    fps: float | None
    frame_count: int | None


def _check(schedule: str) -> None:
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown window schedule {schedule!r}; expected one of {SCHEDULES}")


def window_starts(duration_s: float, fps: float, frame_count: int | None, schedule: str = "clean") -> list[float]:
    """Start times (seconds) of all windows of a video.

    Args:
        duration_s: video duration in seconds.
        fps: average frame rate.
        frame_count: number of video frames (``avca`` only; ``round(duration_s * fps)`` when unknown).
        schedule: ``"clean"`` or ``"avca"``.
    """
    _check(schedule)
    if schedule == "clean":
        n = max(0, math.floor(duration_s + _DURATION_TOL_S))
        return [float(i) * WINDOW_S for i in range(n)]
    frames = frame_count if frame_count else round(duration_s * fps)
    n = int(frames / fps) - 1
    if n <= 0:
        return []
    denom = 10 * (n // 10 + 1)
    return [int((frames - fps) * i / denom) / fps for i in range(n)]


def count_windows(probe: _HasTiming, schedule: str = "clean") -> int:
    """Number of windows ``iter_windows`` yields for a probed video (0 when its timing is unknown)."""
    _check(schedule)
    if not probe.duration_s or not probe.fps:
        return 0
    return len(window_starts(probe.duration_s, probe.fps, probe.frame_count, schedule))


def frame_offsets(fps: float, n_frames: int = FRAMES_PER_WINDOW) -> np.ndarray:
    """Offsets (in frames, from the window's first frame) of the sampled frames.

    Returns:
        int64 array (n_frames,): ``trunc(linspace(0, fps - 1, n_frames))``, e.g. 0..29 at 30 fps.
    """
    # float32 linspace like torch.linspace in the reference, so truncation lands on the same integers.
    return np.linspace(0.0, fps - 1.0, n_frames, dtype=np.float32).astype(np.int64)


def audio_start_sample(start_s: float, rate: int = AUDIO_RATE) -> int:
    """First audio sample of a window starting at ``start_s`` (reference rounding)."""
    return int(np.round(start_s * rate))
