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
- ``discontinuous``: the timestamps of a stream jump back by more than ``MAX_BACKWARD_JUMP_S`` (two recordings
  joined end to end, e.g. concatenated MPEG-TS files, or a timestamp reset): the decoders follow the clock, so
  everything after the jump would be dropped. A 33-bit MPEG-TS timestamp wrap is no jump: FFmpeg unwraps it. Only
  containers without a frame count (MPEG-TS, MPEG-PS, FLV, Matroska) or that declare discontinuities are scanned,
  by demuxing (no decoding); MP4 and AVI cannot hold such a jump;
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
MAX_BACKWARD_JUMP_S = 0.5  # a larger step back in a stream's timestamps means a second recording starts there
_TS_DISCONT = 0x0200  # AVFMT_TS_DISCONT: the format allows timestamp discontinuities (MPEG-TS, MPEG-PS, ...)

STATUSES = ("ok", "no_audio", "no_video", "discontinuous", "too_short", "unreadable", "empty_file", "not_a_file")


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


@dataclasses.dataclass
class _PacketScan:
    """What demuxing a file's packets (no decoding) tells: the video packet count and end time, and the first
    backward timestamp jump of a stream (``jump``: a sentence, "" when none)."""

    count: int = 0
    end_s: float | None = None
    jump: str = ""


def _scan_packets(path: str) -> _PacketScan:
    """Demux the first video and audio streams: count video packets, find the video end time, and look for a
    decode timestamp that steps back by more than ``MAX_BACKWARD_JUMP_S`` (several recordings joined)."""
    scan = _PacketScan()
    with av.open(path, metadata_errors="ignore") as container:
        streams = [*container.streams.video[:1], *container.streams.audio[:1]]
        first: dict[int, float] = {}
        last: dict[int, float] = {}
        counts: dict[int, int] = {}
        for packet in container.demux(*streams):
            if packet.size == 0:  # flush packet at end of stream
                continue
            kind = packet.stream.type
            index = packet.stream.index
            counts[index] = counts.get(index, 0) + 1
            if kind == "video":
                scan.count += 1
                if packet.pts is not None and packet.time_base is not None:
                    pkt_end = float((packet.pts + (packet.duration or 0)) * packet.time_base)
                    scan.end_s = pkt_end if scan.end_s is None else max(scan.end_s, pkt_end)
            # Decode timestamps only: presentation timestamps step back at every B-frame (seconds at a low rate).
            if packet.dts is None or packet.time_base is None or scan.jump:
                continue
            t = float(packet.dts * packet.time_base)
            first.setdefault(index, t)
            if index in last and last[index] - t > MAX_BACKWARD_JUMP_S:
                scan.jump = (
                    f"{kind} timestamps jump back from {last[index] - first[index]:.2f} s to "
                    f"{t - first[index]:.2f} s at {kind} packet {counts[index]}"
                )
            last[index] = max(t, last.get(index, t))
    return scan


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
        jump = _fill_from_container(spath, result, decode_check)
    except (av.error.FFmpegError, OSError, ValueError, IndexError) as exc:
        # FFmpegError covers InvalidDataError & co; OSError covers I/O failures; ValueError/IndexError come from
        # PyAV on some malformed stream layouts. Everything else is a bug and must surface.
        result.status = "unreadable"
        result.reason = f"{spath}: {type(exc).__name__}: {exc}"
        return result
    _classify(result, min_duration_s, jump)
    return result


def _fill_from_container(spath: str, result: ProbeResult, decode_check: bool) -> str:
    """Fill ``result`` from the file; returns a backward timestamp jump found (a sentence), or ""."""
    jump = ""
    with av.open(spath, metadata_errors="ignore") as container:
        discontinuities_allowed = bool(int(container.format.flags) & _TS_DISCONT)
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
    if result.has_video and (result.frame_count is None or discontinuities_allowed):
        # Matroska/WebM/MPEG-TS carry no frame count: count packets (demux only, no decoding). The same pass finds
        # timestamps that jump back (concatenated recordings), which only such formats can hold.
        scan = _scan_packets(spath)
        result.frame_count = result.frame_count or scan.count or None
        if result.duration_s is None:
            result.duration_s = scan.end_s
        jump = scan.jump
    if result.has_video and result.duration_s is None and result.frame_count and result.fps:
        result.duration_s = result.frame_count / result.fps
    if result.has_video and result.fps is None and result.frame_count and result.duration_s:
        result.fps = result.frame_count / result.duration_s
    return jump


def _classify(result: ProbeResult, min_duration_s: float, jump: str = "") -> None:
    if not result.has_video and not result.has_audio:
        result.status, result.reason = "unreadable", f"{result.path}: no audio or video stream"
    elif not result.has_video:
        result.status, result.reason = "no_video", f"{result.path}: no video stream"
    elif jump:
        result.status = "discontinuous"
        result.reason = (
            f"{result.path}: {jump}: several recordings joined end to end (concatenated files) or a timestamp "
            "reset, and everything after the jump would be dropped; split the file at the jump or re-encode it "
            "with continuous timestamps"
        )
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
