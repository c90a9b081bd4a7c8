"""PyAV window decoder (default): one forward pass over the video, frames converted only when sampled.

Memory stays bounded by one or two windows (windows of the "avca" schedule can overlap): decoded ``av.VideoFrame``s
are dropped immediately; the up to 30 sampled frames of each open window are kept as small RGB arrays, converted by
swscale straight to a bounded size (``max_short_side``) so a 3840x2160 frame never exists as a full-size RGB array, and
cropped to their centre when longer than ``max_aspect`` times their short side (a 20000x20 frame keeps 80x20).
Audio comes from ``AudioSegmenter`` (a second container on the same file, read forward in step).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import av
import numpy as np

from avzsl.extractors.decode.audio import AudioSegmenter
from avzsl.extractors.decode.base import (
    DEFAULT_MAX_ASPECT,
    DEFAULT_MAX_SHORT_SIDE,
    DecodeError,
    Window,
    WindowDecoder,
    bounded_size,
    crop_to_aspect,
    rotate_frames,
    start_tolerance_s,
    window_end,
)
from avzsl.extractors.decode.probe import ProbeResult
from avzsl.extractors.decode.windows import AUDIO_SAMPLES, audio_start_sample, frame_offsets

_logger = logging.getLogger(__name__)

_DECODE_ERRORS = (av.error.FFmpegError, OSError, ValueError, IndexError)


class _OpenWindow:
    """Sampled-frame bookkeeping for one window while frames stream past."""

    def __init__(self, index: int, start_s: float, fps: float, offsets: np.ndarray) -> None:
        self.index = index
        self.start_s = start_s
        self.fps = fps
        self.offsets = offsets
        self.limits: np.ndarray | None = None  # per sampled frame: last admissible timestamp
        self.frames: list[np.ndarray | None] = [None] * len(offsets)
        self.times = np.full(len(offsets), np.nan)

    def started(self) -> bool:
        return self.limits is not None

    def offer(self, t: float, get_rgb) -> bool:
        """Consider a frame at time ``t``; returns True once the window cannot take later frames."""
        if self.limits is None:
            if t < self.start_s - start_tolerance_s(self.fps):
                return False
            self.limits = t + (self.offsets + 0.5) / self.fps
        take = t <= self.limits
        if take.any():
            rgb = get_rgb()
            for j in np.flatnonzero(take):
                self.frames[j] = rgb
                self.times[j] = t
        return bool(t > self.limits[-1])


class PyAVDecoder(WindowDecoder):
    """Decode windows with PyAV.

    Args:
        max_short_side: frames whose short side exceeds this are downscaled at decode time (swscale bilinear) so the
            short side equals it; ``None`` keeps native size. The default 360 leaves typical dataset videos
            (UCF 320x240, VGGSound <= 360p) untouched, so the transform's 112-px resize matches the reference there.
        allow_missing_audio: yield silent audio for files without an audio stream instead of raising.
        threads: let FFmpeg decode with frame/slice threads (``thread_type="AUTO"``).
        max_aspect: frames whose long side exceeds this multiple of their short side are cropped to their centre
            along the long side (after the short-side bound); ``None`` keeps them whole. The encoders keep only the
            centre square, so the crop only bounds memory (``base.DEFAULT_MAX_ASPECT``).
    """

    name = "pyav"

    def __init__(
        self,
        max_short_side: int | None = DEFAULT_MAX_SHORT_SIDE,
        allow_missing_audio: bool = False,
        threads: bool = True,
        max_aspect: float | None = DEFAULT_MAX_ASPECT,
    ) -> None:
        self.max_short_side = max_short_side
        self.allow_missing_audio = allow_missing_audio
        self.threads = threads
        self.max_aspect = max_aspect

    def _decode_errors(self) -> tuple[type[BaseException], ...]:
        return _DECODE_ERRORS

    def _iter(self, path: str, schedule: str, probe: ProbeResult | None) -> Iterator[Window]:
        probe, starts = self._plan(path, schedule, probe)
        if not starts:
            _logger.debug("%s: no %s windows (duration %.3f s)", path, schedule, probe.duration_s)
            return
        fps = probe.fps
        offsets = frame_offsets(fps)
        audio = AudioSegmenter(path) if probe.has_audio else None
        try:
            with av.open(path, metadata_errors="ignore") as container:
                stream = container.streams.video[0]
                if self.threads:
                    stream.thread_type = "AUTO"
                yield from self._stream(container, stream, starts, fps, offsets, probe.rotation, audio)
        finally:
            if audio is not None:
                audio.close()

    def _stream(self, container, stream, starts, fps, offsets, rotation, audio) -> Iterator[Window]:
        t_origin: float | None = None  # timestamps count from the first decoded frame (decord does the same)
        pending = list(enumerate(starts))  # windows not opened yet, in order
        open_windows: list[_OpenWindow] = []
        last_rgb: np.ndarray | None = None
        last_t = -np.inf
        n_frames = 0
        gap_skipped: list[float] = []
        for frame in container.decode(stream):
            n_frames += 1
            if frame.pts is None or frame.time_base is None:
                t = last_t + 1.0 / fps  # no timestamp: assume the nominal rate
            else:
                t = float(frame.pts * frame.time_base)
                if t_origin is None:
                    t_origin = t
                t -= t_origin
            if t <= last_t:  # out-of-order/duplicate timestamp: keep time monotonic
                t = last_t + 1e-6
            last_t = t
            cache: list[np.ndarray] = []

            def get_rgb(frame=frame, cache=cache) -> np.ndarray:
                if not cache:
                    cache.append(self._to_rgb(frame))
                return cache[0]

            # Open every window whose start has been reached (several when the schedule overlaps windows). A window
            # whose whole second passed without a frame (a timestamp gap) would only repeat this later frame: skipped.
            while pending and t >= pending[0][1] - start_tolerance_s(fps):
                i, s = pending.pop(0)
                if t >= window_end(s):
                    gap_skipped.append(s)
                    continue
                open_windows.append(_OpenWindow(i, s, fps, offsets))
            done = [w for w in open_windows if w.offer(t, get_rgb)]
            if cache:
                last_rgb = cache[0]
            for w in done:
                open_windows.remove(w)
                yield self._finish(w, rotation, audio, last_rgb)
            if not pending and not open_windows:
                break
        if gap_skipped:
            _logger.warning(
                "%s: %d window(s) from %.2f s contain no video frame (a timestamp gap), skipped",
                container.name,
                len(gap_skipped),
                gap_skipped[0],
            )
        if not pending and not open_windows:
            return
        if n_frames == 0:
            raise DecodeError(container.name, "video stream has no decodable frames")
        # End of stream: close the remaining windows with the last frame (reference index clamping).
        if last_rgb is None:
            raise DecodeError(container.name, "no frame could be sampled")
        for w in open_windows:
            yield self._finish(w, rotation, audio, last_rgb, last_t)
        if pending:
            # The declared duration outlasts the decoded frames (a truncated file, or audio longer than the video):
            # a window with no frame of its own would be the last frame repeated, so it is not made.
            _logger.warning(
                "%s: %d window(s) from %.2f s start after the last video frame (%.2f s), dropped "
                "(truncated file or declared duration longer than the video)",
                container.name,
                len(pending),
                pending[0][1],
                last_t,
            )

    def _finish(self, w: _OpenWindow, rotation: int, audio, last_rgb: np.ndarray, last_t: float = np.nan) -> Window:
        # A started window has all its slots filled (slot j accepts every frame slot j-1 accepts); slots still
        # empty at end of stream take the last frame, as the reference clamps indices to the last decoded frame.
        frames = np.stack([f if f is not None else last_rgb for f in w.frames])
        frames = rotate_frames(frames, rotation)
        times = np.where(np.isnan(w.times), last_t, w.times)
        if audio is not None:
            wav = audio.segment(audio_start_sample(w.start_s))
        else:
            wav = np.zeros(AUDIO_SAMPLES, dtype=np.int16)
        return Window(w.index, w.start_s, window_end(w.start_s), frames, wav, times)

    def _to_rgb(self, frame: av.VideoFrame) -> np.ndarray:
        width, height = bounded_size(frame.width, frame.height, self.max_short_side)
        if (width, height) == (frame.width, frame.height):
            rgb = frame.to_ndarray(format="rgb24")
        else:
            rgb = frame.reformat(width=width, height=height, format="rgb24", interpolation="BILINEAR").to_ndarray()
        # Only this frame exists at full length; the window keeps the cropped centre.
        return crop_to_aspect(rgb, self.max_aspect)
