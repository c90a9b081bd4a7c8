"""Streaming audio: decode, downmix and resample in-process with PyAV, serve 1-s int16 segments.

The reference pipeline ran ``ffmpeg -ac 1 -ar 44100 -f s16le`` on the whole file for every window. Here one pass
over the audio stream feeds PyAV's ``AudioResampler`` (libswresample: format ``s16``, layout ``mono``, rate 44100)
and a small buffer keeps only the samples that the next windows can still need, so memory does not grow with the
length of the file.

Sample index 0 is the first decoded sample, as in the reference's raw ``s16le`` output (FFmpeg already drops the
AAC encoder delay, "priming", signalled by the MP4 edit list). The decoded tail is cropped to the stream's declared
duration when it has one, which removes AAC's end padding (a 2.000-s AAC track decodes to ~2.02 s otherwise).

Segments: ``segment(start)`` returns samples ``[start, start + 44100)``; when that runs past the end of the track
it returns the last 44100 samples (the reference rule); a track shorter than 1 s is zero-padded at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import av
import numpy as np

from avzsl.extractors.decode.windows import AUDIO_RATE, AUDIO_SAMPLES

_logger = logging.getLogger(__name__)


class AudioSegmenter:
    """Serve 1-s mono int16 segments at non-decreasing start samples from one open container.

    Args:
        path: the media file (opened separately from the video decoder so both streams are read in order).
        rate: output sample rate.
        length: samples per segment.

    Use as a context manager; ``segment`` calls must have non-decreasing ``start``.
    """

    def __init__(self, path: str, rate: int = AUDIO_RATE, length: int = AUDIO_SAMPLES) -> None:
        self.rate = rate
        self.length = length
        self._container = av.open(path, metadata_errors="ignore")
        stream = self._container.streams.audio[0]
        stream.thread_type = "AUTO"
        self._limit: int | None = None
        if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
            # Declared duration in output samples: crop encoder end padding to it.
            self._limit = round(float(stream.duration * stream.time_base) * rate)
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        self._chunks = self._decoded_chunks(stream)
        self._buf = np.zeros(0, dtype=np.int16)
        self._buf_start = 0  # absolute index of self._buf[0]
        self._eof = False
        self._last_start = -1

    def _decoded_chunks(self, stream) -> Iterator[np.ndarray]:
        for frame in self._container.decode(stream):
            for out in self._resampler.resample(frame):
                yield out.to_ndarray().reshape(-1)
        for out in self._resampler.resample(None):  # flush the resampler's delay line
            yield out.to_ndarray().reshape(-1)

    @property
    def _buf_end(self) -> int:
        return self._buf_start + len(self._buf)

    def _fill_to(self, end: int, keep_from: int) -> None:
        """Decode until the buffer reaches absolute sample ``end`` (or EOF), dropping samples before ``keep_from``."""
        pieces = [self._buf]
        have = self._buf_end
        while have < end and not self._eof:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._eof = True
                break
            pieces.append(chunk)
            have += len(chunk)
            # Bound memory while skipping far ahead: keep at most `length` samples before `keep_from`'s window.
            if len(pieces) > 64:
                self._join(pieces, keep_from)
                pieces = [self._buf]
        self._join(pieces, keep_from)
        if self._limit is not None and self._buf_end > self._limit:
            self._buf = self._buf[: max(0, self._limit - self._buf_start)]
            self._eof = True

    def _join(self, pieces: list[np.ndarray], keep_from: int) -> None:
        buf = np.concatenate(pieces) if len(pieces) > 1 else pieces[0]
        end = self._buf_start + len(buf)
        # Keep the last `length` samples too: they are the answer when a later window runs past the end.
        drop = max(0, min(keep_from, end - self.length) - self._buf_start)
        self._buf = buf[drop:]
        self._buf_start += drop

    def segment(self, start: int) -> np.ndarray:
        """Samples ``[start, start + length)``; the last ``length`` samples when that passes the end.

        Returns:
            int16 array (length,), mono.
        """
        if start < self._last_start:
            raise ValueError(f"segments must be requested in order: {start} < {self._last_start}")
        self._last_start = start
        self._fill_to(start + self.length, keep_from=start)
        if self._buf_end >= start + self.length:
            lo = start - self._buf_start
            return self._buf[lo : lo + self.length].copy()
        # Past the end: last second of the track (reference), zero-padded if the whole track is shorter.
        tail = self._buf[-self.length :]
        if len(tail) < self.length:
            _logger.debug("audio track shorter than one segment (%d samples); zero-padding", len(tail))
            tail = np.concatenate([tail, np.zeros(self.length - len(tail), dtype=np.int16)])
        return tail.copy()

    def close(self) -> None:
        """Release the container."""
        self._chunks.close()
        self._container.close()

    def __enter__(self) -> AudioSegmenter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def decode_audio(path: str, rate: int = AUDIO_RATE) -> np.ndarray:
    """Whole audio track as mono int16 at ``rate`` (for tests and short files; the decoders stream instead).

    Returns:
        int16 array (n_samples,), cropped to the stream's declared duration like ``AudioSegmenter``.
    """
    with av.open(path, metadata_errors="ignore") as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
        pieces = [out.to_ndarray().reshape(-1) for f in container.decode(stream) for out in resampler.resample(f)]
        pieces += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
        wav = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int16)
        if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
            wav = wav[: round(float(stream.duration * stream.time_base) * rate)]
    return wav
