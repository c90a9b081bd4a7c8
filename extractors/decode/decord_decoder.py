"""decord window decoder (optional, ``pip install avzsl[decord]``): video frames through decord 0.6.0.

Why audio still goes through PyAV: decord's ``AudioReader`` decodes the whole track into one float32 array before
returning anything (memory grows with video length), resamples with its own defaults and returns floats in
[-1, 1], while the recipe needs int16 values from a 44.1-kHz mono resample; ``AudioSegmenter`` streams that.

Caveats of decord 0.6.0 (last release 2021, bundles FFmpeg 4.1):

- its decode-time resize (``width``/``height``) is broken for some sizes (wrong channel count, size-mismatch
  errors), so frames are decoded at native size and downscaled here per chunk of ``chunk_frames`` frames (memory
  bound: ``chunk_frames`` native frames);
- it applies +-90-degree display rotations itself (same result as PyAV + ``rotate_frames``, tested) but returns
  4-channel garbage for 180 degrees, so such files raise ``DecodeError`` (use the PyAV decoder);
- random access seeks to the previous key frame and decodes forward, so each per-window batch costs up to one GOP
  of extra decoding; it reads the whole frame index when opening a file.

On lossless input it returns the same frames as ``PyAVDecoder`` (tested); for frames above ``max_short_side`` the
downscale runs on RGB instead of swscale's YUV path, so pixels can differ by a few levels.
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
    select_frame_indices,
    start_tolerance_s,
    window_end,
)
from avzsl.extractors.decode.probe import ProbeResult
from avzsl.extractors.decode.windows import AUDIO_SAMPLES, audio_start_sample, frame_offsets

_logger = logging.getLogger(__name__)


def _has_frame(times: np.ndarray, start_s: float, fps: float) -> bool:
    """Whether a frame time lies in the window ``[start_s - tolerance, start_s + 1)`` (increasing ``times``)."""
    first = int(np.searchsorted(times, start_s - start_tolerance_s(fps), side="left"))
    return first < len(times) and times[first] < window_end(start_s)


class DecordDecoder(WindowDecoder):
    """Decode window frames with decord, audio with PyAV.

    Args:
        max_short_side: as in ``PyAVDecoder``.
        allow_missing_audio: yield silent audio for files without an audio stream instead of raising.
        chunk_frames: frames fetched per decord call (bounds memory for very large frames).
        num_threads: decord decoding threads (0 = decord's default).
        max_aspect: as in ``PyAVDecoder``.
    """

    name = "decord"

    def __init__(
        self,
        max_short_side: int | None = DEFAULT_MAX_SHORT_SIDE,
        allow_missing_audio: bool = False,
        chunk_frames: int = 10,
        num_threads: int = 0,
        max_aspect: float | None = DEFAULT_MAX_ASPECT,
    ) -> None:
        import decord  # fail at construction, not mid-run, when decord is missing

        self._decord = decord
        self.max_short_side = max_short_side
        self.allow_missing_audio = allow_missing_audio
        self.chunk_frames = chunk_frames
        self.num_threads = num_threads
        self.max_aspect = max_aspect

    def _decode_errors(self) -> tuple[type[BaseException], ...]:
        return (self._decord.DECORDError, av.error.FFmpegError, OSError, ValueError, IndexError)

    def _iter(self, path: str, schedule: str, probe: ProbeResult | None) -> Iterator[Window]:
        probe, starts = self._plan(path, schedule, probe)
        if not starts:
            return
        rotation = round(probe.rotation / 90) % 4  # quarter turns counter-clockwise
        if rotation == 2:
            raise DecodeError(path, "decord 0.6.0 mis-decodes 180-degree rotated video; use the 'pyav' decoder")
        reader = self._decord.VideoReader(path, ctx=self._decord.cpu(0), num_threads=self.num_threads)
        n = len(reader)
        if n == 0:
            raise DecodeError(path, "decord found no video frames")
        times = self._frame_times(path, reader, n)
        offsets = frame_offsets(probe.fps)
        audio = AudioSegmenter(path) if probe.has_audio else None
        # Same rule as PyAVDecoder: a window whose second holds no frame (a timestamp gap) is not made.
        planned = list(enumerate(starts))
        late_start = times[-1] + start_tolerance_s(probe.fps)  # later windows are dropped below, with their message
        kept = [(i, s) for i, s in planned if s > late_start or _has_frame(times, s, probe.fps)]
        if len(kept) < len(planned):
            gap = [s for i, s in planned if (i, s) not in kept]
            _logger.warning("%s: %d window(s) from %.2f s contain no video frame (a timestamp gap), skipped",
                            path, len(gap), gap[0])
        starts = [s for _, s in kept]
        index_of = [i for i, _ in kept]
        late = [s for s in starts if s - start_tolerance_s(probe.fps) > times[-1]]
        if late:
            # Same rule as PyAVDecoder: a window with no frame of its own (truncated file) is not made.
            _logger.warning(
                "%s: %d window(s) from %.2f s start after the last video frame (%.2f s), dropped "
                "(truncated file or declared duration longer than the video)",
                path,
                len(late),
                late[0],
                times[-1],
            )
            starts = starts[: len(starts) - len(late)]
        try:
            for k, s in enumerate(starts):
                i = index_of[k]
                idx = select_frame_indices(times, s, probe.fps, offsets)
                # decord already applies +-90-degree display rotations.
                frames = self._fetch(reader, idx)
                wav = audio.segment(audio_start_sample(s)) if audio is not None else np.zeros(AUDIO_SAMPLES, np.int16)
                yield Window(i, s, window_end(s), frames, wav, times[idx])
        finally:
            if audio is not None:
                audio.close()
            del reader

    def _frame_times(self, path: str, reader, n: int) -> np.ndarray:
        """Frame times (float64, (n,)) relative to the first frame, same origin and arithmetic as PyAVDecoder.

        decord reports float32 timestamps (0.25 ms resolution after an hour), which can flip the frame choice
        where a sampling target falls exactly on a frame time (variable frame rate). The exact times come from
        demuxing the video packets with PyAV (no decoding); decord's own are the fallback when the counts differ.
        """
        with av.open(path, metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            pts = sorted(p.pts for p in container.demux(stream) if p.size and p.pts is not None)
            tb = stream.time_base
        if len(pts) == n:
            times = np.array([float(p * tb) for p in pts])
        else:
            _logger.warning("%s: %d packets vs %d decord frames; using decord timestamps", path, len(pts), n)
            times = reader.get_frame_timestamp(np.arange(n))[:, 0].astype(np.float64)
        return times - times[0]

    def _fetch(self, reader, idx: np.ndarray) -> np.ndarray:
        """Frames ``idx`` as uint8 (len(idx), H', W', 3), downscaled to ``max_short_side`` chunk by chunk."""
        uniq, inverse = np.unique(idx, return_inverse=True)  # repeated indices (fps < 30) decode once
        out: list[np.ndarray] = []
        for lo in range(0, len(uniq), self.chunk_frames):
            batch = reader.get_batch(uniq[lo : lo + self.chunk_frames].tolist()).asnumpy()
            out.extend(self._downscale(f) for f in batch)
        frames = np.stack(out)[inverse]
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"decord returned frames of shape {frames.shape}, expected (T, H, W, 3)")
        return frames

    def _downscale(self, rgb: np.ndarray) -> np.ndarray:
        height, width = rgb.shape[:2]
        w, h = bounded_size(width, height, self.max_short_side)
        if (w, h) != (width, height):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            rgb = frame.reformat(width=w, height=h, interpolation="BILINEAR").to_ndarray()
        return crop_to_aspect(rgb, self.max_aspect)  # same crop as PyAVDecoder
