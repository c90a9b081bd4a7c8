"""What every window decoder shares: the ``Window`` type, ``DecodeError``, the ``WindowDecoder`` base class and the
frame selection rule.

Frame selection rule (shared by both decoders, so they agree frame for frame): a window starting at ``start_s``
begins at the first frame whose timestamp is ``>= start_s`` (within ``0.1 / fps``); sampled frame ``j`` is the frame
shown at ``t0 + offset_j / fps`` (the last frame with timestamp ``<= t0 + (offset_j + 0.5) / fps``), where ``t0`` is
the first frame's timestamp and ``offset_j`` comes from ``windows.frame_offsets``. For constant frame rate this is
exactly frame ``first + offset_j`` (the reference's index rule); for variable frame rate it follows the clock.
Past the last frame the last frame repeats (the reference clamps indices the same way). Timestamps count from the
first decoded video frame (audio samples count from the first decoded sample, like the reference).

The backends (``pyav_decoder``, ``decord_decoder``) import this module only; the registry in
``avzsl.extractors.decode`` imports the backends.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterator

import numpy as np

from avzsl.extractors.decode.probe import probe_video
from avzsl.extractors.decode.windows import SCHEDULES, WINDOW_S, window_starts

_logger = logging.getLogger(__name__)

DEFAULT_MAX_SHORT_SIDE = 360  # decoders' default bound on the short side of returned frames (pixels)
# Decoders' default bound on the long side, as a multiple of the short side: a longer frame (20000x20) is cropped to
# its centre. Every encoder transform scales the short side to its input size and keeps the centre square, so a
# 1000:1 frame would be scaled to 112x112000 (4.5 GB per window as float32) only for its middle 112 columns to be
# kept. 4:1 leaves every ordinary format untouched (16:9, 21:9 cinema, 32:9 ultrawide; portrait alike), so their
# frames and features stay bit-identical; with the short-side bound the long side is at most 4 x 360 = 1440.
DEFAULT_MAX_ASPECT = 4.0

START_TOL_FRAMES = 0.1  # timestamp slack (in frames) when finding a window's first frame; absorbs pts rounding
MAX_START_TOL_S = 0.1  # ... and at most this many seconds: an average rate far below 1 fps (frames at 0-1 s and at
# 3600 s average 0.02 fps) must not widen the slack to seconds


def start_tolerance_s(fps: float) -> float:
    """Timestamp slack (seconds) when finding a window's first frame: 0.1 frame, at most 0.1 s."""
    return min(START_TOL_FRAMES / fps, MAX_START_TOL_S)


class DecodeError(RuntimeError):
    """A file could not be decoded into windows. ``path`` and ``reason`` are kept for failure records."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"cannot decode {self.path}: {reason}")


@dataclasses.dataclass
class Window:
    """One 1-s audio-visual window.

    Attributes:
        index: window number within the video (0-based, schedule order).
        start_s / end_s: window span in seconds (``end_s = start_s + 1``).
        frames: uint8 array (30, H, W, 3), RGB, rotation applied, possibly downscaled (decoder ``max_short_side``)
            and cropped to its centre along the long side (decoder ``max_aspect``).
        audio: int16 array (44100,), mono 44.1 kHz, the second starting at ``round(start_s * 44100)``.
        frame_times_s: float64 array (30,), timestamps of the sampled frames (for checks and debugging).
    """

    index: int
    start_s: float
    end_s: float
    frames: np.ndarray
    audio: np.ndarray
    frame_times_s: np.ndarray


class WindowDecoder:
    """Base class of window decoders. Subclasses implement ``_iter`` and list their library's errors in
    ``_decode_errors``; this class turns those errors into :class:`DecodeError` naming the file."""

    name: str = "base"

    def iter_windows(self, path: str | os.PathLike, schedule: str = "clean", probe=None) -> Iterator[Window]:
        """Yield the windows of ``path`` under ``schedule`` (``"clean"`` or ``"avca"``).

        Args:
            path: the video file.
            schedule: window schedule, see ``extractors/decode/windows.py``.
            probe: an existing ``ProbeResult`` for the file (saves a probe).

        Raises:
            DecodeError: the file cannot be opened/decoded (raised lazily, while iterating).
            ValueError: unknown schedule.
        """
        check_schedule(schedule)
        spath = os.fspath(path)
        try:
            yield from self._iter(spath, schedule, probe)
        except DecodeError:
            raise
        except self._decode_errors() as exc:
            raise DecodeError(spath, f"{type(exc).__name__}: {exc}") from exc

    def _iter(self, path: str, schedule: str, probe) -> Iterator[Window]:
        raise NotImplementedError

    def _plan(self, path: str, schedule: str, probe) -> tuple:
        """Probe (unless given) and refuse what cannot give windows; returns ``(probe, window start seconds)``."""
        probe = probe if probe is not None else probe_video(path, min_duration_s=0.0)
        if probe.status in ("not_a_file", "empty_file", "unreadable", "no_video", "discontinuous"):
            raise DecodeError(path, probe.reason or probe.status)
        if not probe.has_audio and not getattr(self, "allow_missing_audio", False):
            raise DecodeError(path, "no audio stream")
        return probe, window_starts(probe.duration_s, probe.fps, probe.frame_count, schedule)

    def _decode_errors(self) -> tuple[type[BaseException], ...]:
        """Exceptions of the decoding library that mean "this file cannot be decoded"."""
        return (OSError, ValueError, IndexError)


def check_schedule(schedule: str) -> None:
    """Raise ``ValueError`` for an unknown schedule name."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown window schedule {schedule!r}; expected one of {SCHEDULES}")


def select_frame_indices(times_s: np.ndarray, start_s: float, fps: float, offsets: np.ndarray) -> np.ndarray:
    """The frame selection rule on an array of frame timestamps (decord path; PyAV applies it while streaming).

    Args:
        times_s: float array (n_frames,), increasing frame timestamps relative to the stream start.
        start_s: window start.
        fps: average frame rate.
        offsets: int array (30,), ``windows.frame_offsets(fps)``.

    Returns:
        int64 array (30,) of frame indices.
    """
    n = len(times_s)
    first = int(np.searchsorted(times_s, start_s - start_tolerance_s(fps), side="left"))
    first = min(first, n - 1)
    targets = times_s[first] + (offsets + 0.5) / fps
    idx = np.searchsorted(times_s, targets, side="right") - 1
    return np.clip(idx, first, n - 1).astype(np.int64)


def window_end(start_s: float) -> float:
    """End time of a window starting at ``start_s``."""
    return start_s + WINDOW_S


def bounded_size(width: int, height: int, max_short_side: int | None) -> tuple[int, int]:
    """(width, height) scaled so the short side is at most ``max_short_side`` (aspect kept, even-free, >= 1)."""
    short = min(width, height)
    if max_short_side is None or short <= max_short_side:
        return width, height
    scale = max_short_side / short
    if width <= height:
        return max_short_side, max(1, int(height * scale))
    return max(1, int(width * scale)), max_short_side


def crop_to_aspect(rgb: np.ndarray, max_aspect: float | None) -> np.ndarray:
    """The centre of an ``(H, W, C)`` frame whose long side exceeds ``max_aspect`` times its short side, cropped
    along the long side to ``floor(max_aspect * short)`` pixels (at least 1); other frames are returned as they are
    (the same array, so their pixels stay bit-identical)."""
    height, width = rgb.shape[:2]
    short, long = min(height, width), max(height, width)
    if max_aspect is None or long <= max_aspect * short:
        return rgb
    keep = max(1, int(max_aspect * short))
    start = (long - keep) // 2
    if width >= height:
        return np.ascontiguousarray(rgb[:, start : start + keep])
    return np.ascontiguousarray(rgb[start : start + keep])


def rotate_frames(frames: np.ndarray, rotation: int) -> np.ndarray:
    """Apply a display rotation (degrees counter-clockwise, multiples of 90) to (..., H, W, C) frames."""
    k = round(rotation / 90) % 4
    if rotation % 90:
        _logger.warning("rotation %s is not a multiple of 90 degrees; using %d", rotation, k * 90)
    if k == 0:
        return frames
    return np.ascontiguousarray(np.rot90(frames, k=k, axes=(-3, -2)))
