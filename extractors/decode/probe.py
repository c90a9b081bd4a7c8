"""Cheap per-file probing: what is in a video file and can it be used for feature extraction.

``probe_video(path)`` reads container and stream metadata with PyAV and decodes at most one video frame (to read the
display-matrix rotation, which FFmpeg attaches to decoded frames, and to prove the video stream decodes at all). When
the container lacks a frame count (Matroska/WebM) the video packets are counted by demuxing (no decoding). It never
raises for a bad file: the outcome is a ``ProbeResult`` with ``status`` and a human-readable ``reason``.

Statuses, checked in this order:

- ``not_a_file``: the path does not exist or is not a regular file (the reason names a symlink loop, a broken
  symlink, a folder or a missing file);
- ``empty_file``: zero bytes;
- ``unreadable``: no permission to read it, FFmpeg cannot open/demux it, or its video stream does not decode;
- ``no_video``: no video stream;
- ``no_audio``: no audio stream;
- ``too_short``: video shorter than one feature window (1 s, ``MIN_DURATION_S``). AVCA's filter used 1.1 s
  (video and audio duration > 1.1 s); with the "avca" window schedule a video needs >= 2 s for even one window
  (``int(frames/fps) - 1``), see ``extractors/decode/windows.py``;
- ``ok``.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

import av

_logger = logging.getLogger(__name__)

MIN_DURATION_S = 1.0  # one feature window

STATUSES = ("ok", "no_audio", "no_video", "too_short", "unreadable", "empty_file", "not_a_file")


@dataclasses.dataclass
class ProbeResult:
    """Metadata of one file. Numeric fields are ``None`` when unknown (e.g. unreadable files)."""

    path: str
    duration_s: float | None = None  # video stream duration (container duration when the stream has none)
    fps: float | None = None  # average frame rate of the video stream
    frame_count: int | None = None  # from metadata, else counted by demuxing video packets
    width: int | None = None  # coded size, before rotation
    height: int | None = None
    has_video: bool = False
    has_audio: bool = False
    audio_sample_rate: int | None = None  # of the file (decoding resamples to 44.1 kHz)
    video_codec: str | None = None
    audio_codec: str | None = None
    rotation: int = 0  # display rotation, degrees counter-clockwise (PyAV ``VideoFrame.rotation``)
    audio_duration_s: float | None = None
    status: str = "unreadable"
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when the file can be used for audio-visual extraction."""
        return self.status == "ok"

    def to_dict(self) -> dict:
        """Plain dict of all fields (JSON/CSV/parquet friendly)."""
        return dataclasses.asdict(self)


def _stream_duration_s(stream, container) -> float | None:
    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    return None


def _count_video_packets(path: str) -> tuple[int, float | None]:
    """Count video packets and find the end time by demuxing only (no decoding). Returns (count, end_s)."""
    count = 0
    end_s = None
    with av.open(path) as container:
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if packet.size == 0:  # flush packet at end of stream
                continue
            count += 1
            if packet.pts is not None and packet.time_base is not None:
                pkt_end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                end_s = pkt_end if end_s is None else max(end_s, pkt_end)
    return count, end_s


def _not_a_file_reason(p: Path) -> tuple[str, str]:
    """Status and reason for a path that is not a readable regular file (symlink loop, broken symlink, a folder
    without search permission on the way, a folder, or missing)."""
    try:
        os.stat(p)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "not_a_file", "symbolic link loop (too many levels of symbolic links)"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "unreadable", f"permission denied reaching the file ({exc.strerror})"
        if p.is_symlink():
            return "not_a_file", f"broken symbolic link to {os.readlink(p)}"
        return "not_a_file", f"does not exist ({exc.strerror})"
    return "not_a_file", "not a regular file (a folder, device or pipe)"


def probe_video(
    path: str | os.PathLike, min_duration_s: float = MIN_DURATION_S, decode_check: bool = True
) -> ProbeResult:
    """Probe one file.

    Args:
        path: the file.
        min_duration_s: shorter videos get ``too_short``.
        decode_check: decode the first video frame (reads rotation; catches undecodable streams). Costs one frame.

    Returns:
        A ``ProbeResult``; never raises for bad files (``KeyboardInterrupt``/``SystemExit`` propagate).
    """
    spath = os.fspath(path)
    result = ProbeResult(path=spath)
    p = Path(spath)
    try:
        regular = p.is_file()
    except OSError:  # is_file() raises for EACCES (a folder on the way without search permission)
        regular = False
    if not regular:
        result.status, reason = _not_a_file_reason(p)
        result.reason = f"{spath}: {reason}"
        return result
    try:
        if p.stat().st_size == 0:
            result.status, result.reason = "empty_file", f"{spath}: file is empty (0 bytes)"
            return result
        _fill_from_container(spath, result, decode_check)
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        # FFmpegError covers InvalidDataError & co; OSError covers I/O failures; ValueError/IndexError come from
        # PyAV on some malformed stream layouts. Everything else is a bug and must surface.
        result.status = "unreadable"
        result.reason = f"{spath}: {type(exc).__name__}: {exc}"
        return result
    _classify(result, min_duration_s)
    return result


def _fill_from_container(spath: str, result: ProbeResult, decode_check: bool) -> None:
    with av.open(spath, metadata_errors="ignore") as container:
        if container.streams.video:
            vstream = container.streams.video[0]
            result.has_video = True
            result.video_codec = vstream.codec_context.name
            result.width = vstream.codec_context.width or None
            result.height = vstream.codec_context.height or None
            rate = vstream.average_rate or vstream.guessed_rate or vstream.base_rate
            result.fps = float(rate) if rate else None
            result.duration_s = _stream_duration_s(vstream, container)
            result.frame_count = int(vstream.frames) if vstream.frames else None
        if container.streams.audio:
            astream = container.streams.audio[0]
            result.has_audio = True
            result.audio_codec = astream.codec_context.name
            result.audio_sample_rate = astream.codec_context.sample_rate or None
            result.audio_duration_s = _stream_duration_s(astream, container)
        if result.has_video and decode_check:
            frame = next(container.decode(video=0), None)
            if frame is None:
                raise av.error.InvalidDataError(0, "video stream has no decodable frame")
            result.rotation = int(frame.rotation or 0)
            result.width = result.width or frame.width
            result.height = result.height or frame.height
    if result.has_video and result.frame_count is None:
        # Matroska/WebM carry no frame count: count packets (demux only, no decoding).
        count, end_s = _count_video_packets(spath)
        result.frame_count = count or None
        if result.duration_s is None:
            result.duration_s = end_s
    if result.has_video and result.duration_s is None and result.frame_count and result.fps:
        result.duration_s = result.frame_count / result.fps
    if result.has_video and result.fps is None and result.frame_count and result.duration_s:
        result.fps = result.frame_count / result.duration_s


def _classify(result: ProbeResult, min_duration_s: float) -> None:
    if not result.has_video and not result.has_audio:
        result.status, result.reason = "unreadable", f"{result.path}: no audio or video stream"
    elif not result.has_video:
        result.status, result.reason = "no_video", f"{result.path}: no video stream"
    elif not result.has_audio:
        result.status, result.reason = "no_audio", f"{result.path}: no audio stream"
    elif result.duration_s is None or result.fps is None or not math.isfinite(result.duration_s):
        result.status, result.reason = "unreadable", f"{result.path}: duration or frame rate unknown"
    elif result.duration_s < min_duration_s:
        result.status = "too_short"
        result.reason = f"{result.path}: video lasts {result.duration_s:.3f} s < {min_duration_s:g} s (one window)"
    else:
        result.status, result.reason = "ok", ""


def probe_many(
    paths: Sequence[str | os.PathLike],
    n_jobs: int = 1,
    backend: str = "threading",
    min_duration_s: float = MIN_DURATION_S,
    decode_check: bool = True,
) -> list[ProbeResult]:
    """Probe many files in parallel with joblib, results in input order.

    Threads are the default: probing is dominated by FFmpeg's C code and file I/O, which release the GIL, and
    threads avoid process start-up and pickling (see docs/decoding.md for the measurement).

    Args:
        paths: files to probe.
        n_jobs: joblib workers (1 = sequential, -1 = all cores).
        backend: joblib backend, ``"threading"`` or ``"loky"`` (processes).
        min_duration_s / decode_check: as in :func:`probe_video`.
    """
    if n_jobs == 1 or len(paths) <= 1:
        return [probe_video(p, min_duration_s, decode_check) for p in paths]
    from joblib import Parallel, delayed

    return Parallel(n_jobs=n_jobs, backend=backend)(
        delayed(probe_video)(p, min_duration_s, decode_check) for p in paths
    )
