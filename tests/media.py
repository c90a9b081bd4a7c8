"""Tiny synthetic media written with PyAV for tests (no downloads, no committed binaries).

Every writer produces a real container encoded by FFmpeg (through PyAV) in well under a second for the default
sizes. Frames are deterministic functions of the frame index so tests can recompute what a decoder must return:

- ``frame_pattern(i, h, w, ...)`` is the exact RGB frame number ``i`` (uint8, (h, w, 3));
- the lossless variant (``lossless=True``: H.264 ``libx264rgb`` crf=0 + FLAC) round-trips frames and audio
  bit-exactly, which the decode tests rely on; the default lossy variant (``libx264`` + AAC, yuv420p) is what real
  datasets look like (AAC priming/padding, chroma subsampling).

Import from other tests as ``from tests.media import write_av, write_audio_only, write_video_only``.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = [
    "audio_tone",
    "frame_pattern",
    "write_audio_only",
    "write_av",
    "write_text_as_mp4",
    "write_truncated",
    "write_vfr",
    "write_video_only",
]

AUDIO_PEAK = 12000  # int16 amplitude of test tones; leaves headroom so AAC never clips


def frame_pattern(
    index: int, height: int, width: int, color: tuple[int, int, int] = (200, 40, 90), moving: bool = True
) -> np.ndarray:
    """The RGB frame number ``index`` of a test video: a coloured square on a grey-ramp background.

    The background encodes the frame index (so a decoder that returns the wrong frame is caught) and the square
    moves one pixel per frame when ``moving``.

    Returns:
        uint8 array (height, width, 3).
    """
    frame = np.empty((height, width, 3), dtype=np.uint8)
    # Horizontal ramp plus a per-frame offset: every frame differs from its neighbours in every pixel.
    cols = np.arange(width, dtype=np.int64)[None, :]
    rows = np.arange(height, dtype=np.int64)[:, None]
    ramp = (cols * 3 + rows + index * 7) % 256
    frame[..., 0] = ramp
    frame[..., 1] = (ramp * 5 + 17) % 256
    frame[..., 2] = (index * 11) % 256
    side = max(2, min(height, width) // 3)
    x0 = (index % max(1, width - side)) if moving else (width - side) // 2
    y0 = (height - side) // 2
    frame[y0 : y0 + side, x0 : x0 + side] = color
    return frame


def audio_tone(n_samples: int, sample_rate: int, freq_hz: float = 440.0, channels: int = 1) -> np.ndarray:
    """A sine tone at ``AUDIO_PEAK`` amplitude.

    Returns:
        int16 array (channels, n_samples) (planar, as PyAV's ``s16p`` wants it).
    """
    t = np.arange(n_samples, dtype=np.float64) / sample_rate
    tone = np.round(AUDIO_PEAK * np.sin(2 * math.pi * freq_hz * t)).astype(np.int16)
    return np.repeat(tone[None, :], channels, axis=0)


def _add_video_stream(container, fps: Fraction | int, width: int, height: int, lossless: bool, rotation: int):
    if lossless:
        stream = container.add_stream("libx264rgb", rate=fps)
        stream.pix_fmt = "rgb24"
        stream.options = {"crf": "0", "preset": "ultrafast"}
    else:
        stream = container.add_stream("libx264", rate=fps)
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
    stream.width = width
    stream.height = height
    # Closed GOP with frequent key frames keeps seeking-based readers (decord) exact and cheap.
    stream.codec_context.gop_size = 15
    if rotation:
        stream.set_display_rotation(rotation)
    return stream


def _add_audio_stream(container, sample_rate: int, lossless: bool, channels: int):
    layout = "mono" if channels == 1 else "stereo"
    codec = "flac" if lossless else "aac"
    stream = container.add_stream(codec, rate=sample_rate, layout=layout)
    return stream


def _encode_video(container, stream, n_frames: int, width: int, height: int, color, moving: bool) -> None:
    fmt = "rgb24"
    for i in range(n_frames):
        frame = av.VideoFrame.from_ndarray(frame_pattern(i, height, width, color, moving), format=fmt)
        frame.pts = i  # time base of the stream is 1/fps for libx264: one tick per frame
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def _encode_audio(container, stream, samples: np.ndarray, sample_rate: int) -> None:
    channels, n = samples.shape
    layout = "mono" if channels == 1 else "stereo"
    chunk = 4096
    for start in range(0, n, chunk):
        piece = np.ascontiguousarray(samples[:, start : start + chunk])
        frame = av.AudioFrame.from_ndarray(piece, format="s16p", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_av(
    path: str | Path,
    duration_s: float = 2.0,
    fps: int | Fraction = 30,
    size: tuple[int, int] = (32, 32),
    audio: bool = True,
    sample_rate: int = 44100,
    freq_hz: float = 440.0,
    channels: int = 1,
    lossless: bool = False,
    color: tuple[int, int, int] = (200, 40, 90),
    moving: bool = True,
    rotation: int = 0,
    audio_duration_s: float | None = None,
) -> Path:
    """Write a video (+ optional audio tone) file.

    Args:
        path: output file; the container follows the suffix (``.mp4``, ``.mkv``, ...).
        duration_s: video length; ``round(duration_s * fps)`` frames are written.
        fps: frame rate (int or Fraction, e.g. ``Fraction(30000, 1001)``).
        size: (width, height) in pixels (even numbers for yuv420p).
        audio: add an audio stream.
        sample_rate: audio sample rate of the file (the decoder resamples to 44.1 kHz).
        freq_hz: tone frequency.
        channels: 1 (mono) or 2 (stereo, same tone on both).
        lossless: ``libx264rgb`` crf=0 + FLAC (bit-exact round trip) instead of ``libx264`` crf=18 + AAC.
        color: RGB of the square drawn on every frame.
        moving: the square moves one pixel per frame.
        rotation: display-matrix rotation in degrees (counter-clockwise), 0 for none.
        audio_duration_s: audio length when it should differ from the video length.

    Returns:
        The path written.
    """
    path = Path(path)
    width, height = size
    n_frames = round(duration_s * float(fps))
    with av.open(str(path), mode="w") as container:
        vstream = _add_video_stream(container, fps, width, height, lossless, rotation)
        astream = _add_audio_stream(container, sample_rate, lossless, channels) if audio else None
        _encode_video(container, vstream, n_frames, width, height, color, moving)
        if astream is not None:
            a_dur = duration_s if audio_duration_s is None else audio_duration_s
            samples = audio_tone(round(a_dur * sample_rate), sample_rate, freq_hz, channels)
            _encode_audio(container, astream, samples, sample_rate)
    return path


def write_video_only(path: str | Path, duration_s: float = 2.0, **kwargs) -> Path:
    """Write a video file without an audio stream (same options as :func:`write_av`)."""
    return write_av(path, duration_s=duration_s, audio=False, **kwargs)


def write_audio_only(
    path: str | Path,
    duration_s: float = 2.0,
    sample_rate: int = 44100,
    freq_hz: float = 440.0,
    channels: int = 1,
    lossless: bool = False,
    samples: np.ndarray | None = None,
) -> Path:
    """Write an audio-only file (AAC in ``.m4a``/``.mp4``, FLAC when ``lossless``; the suffix picks the container).

    Args:
        samples: optional int16 (channels, n) signal to encode instead of the tone.
    """
    path = Path(path)
    if samples is None:
        samples = audio_tone(round(duration_s * sample_rate), sample_rate, freq_hz, channels)
    with av.open(str(path), mode="w") as container:
        stream = _add_audio_stream(container, sample_rate, lossless, samples.shape[0])
        _encode_audio(container, stream, samples, sample_rate)
    return path


def write_truncated(src: str | Path, dst: str | Path, keep_fraction: float = 0.5) -> Path:
    """Copy the first ``keep_fraction`` of the bytes of ``src`` to ``dst`` (a truncated, usually unreadable file)."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: max(1, int(len(data) * keep_fraction))])
    return dst


def write_text_as_mp4(path: str | Path) -> Path:
    """A text file with a video suffix."""
    path = Path(path)
    path.write_text("this is not a video\n" * 20)
    return path


def write_vfr(
    path: str | Path, frame_indices: list[int], fps: int = 30, size: tuple[int, int] = (32, 32), audio_s: float = 0
) -> Path:
    """Lossless variable-frame-rate video: ``frame_pattern(i)`` shown at time ``i / fps`` for each listed ``i``.

    Skipped indices make gaps (the previous frame stays on screen), so the stream has no single frame rate.
    """
    path = Path(path)
    width, height = size
    with av.open(str(path), mode="w") as container:
        stream = _add_video_stream(container, fps, width, height, lossless=True, rotation=0)
        stream.codec_context.time_base = Fraction(1, fps)
        astream = _add_audio_stream(container, 44100, True, 1) if audio_s else None
        for i in frame_indices:
            frame = av.VideoFrame.from_ndarray(frame_pattern(i, height, width), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if astream is not None:
            _encode_audio(container, astream, audio_tone(round(audio_s * 44100), 44100), 44100)
    return path
