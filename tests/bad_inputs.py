"""A corpus of bad and odd-but-valid inputs, as a real video collection contains them, written with PyAV.

``make_corpus(root)`` writes a class-per-folder tree under ``root`` and returns one :class:`CorpusItem` per file
the extraction sees, with the outcome the pipeline must record for it: ``"ok"`` (extracted, finite features) or a
failure status (``empty_file``, ``unreadable``, ``not_a_file``, ``no_audio``, ``no_video``, ``too_short``,
``decode_error``) plus a fragment its reason must contain. Every valid video has exactly one 1-s window (1.2 s) so
the real encoders run once per video. Items that this machine cannot produce (VP9 without libvpx in PyAV's FFmpeg)
are left out and listed in ``Corpus.skipped`` with the reason.

Class folders are words of the bundled GloVe vocabulary (the class-name embedding needs them); the ``alpha``...
names of the docs are replaced by colours and animals for that reason.

Import as ``from tests.bad_inputs import make_corpus``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from tests.media import (
    _encode_audio,
    audio_tone,
    frame_pattern,
    write_audio_only,
    write_av,
    write_text_as_mp4,
    write_vfr,
    write_video_only,
)

__all__ = ["Corpus", "CorpusItem", "make_corpus", "root_reads_everything", "write_extras", "write_uhd",
           "write_with_codecs"]

DURATION_S = 1.2  # one clean window
SMALL = (64, 48)
UHD = (3840, 2160)
UNICODE_NAME = "vidéo ünïcode 1.mp4"
LATIN1_NAME = os.fsdecode(b"caf\xe9 latin-1.mp4")  # not UTF-8: Python holds the byte 0xe9 as the surrogate \udce9
LATIN1_ID = "dog/caf\\xe9 latin-1.mp4"  # its id: the byte written as \xe9


@dataclass(frozen=True)
class CorpusItem:
    """One input of the corpus.

    Attributes:
        video_id: id the pipeline gives it (relative POSIX path).
        expected: ``"ok"`` or the failure status the pipeline must record.
        reason: a fragment the recorded reason must contain (case-insensitive; empty for ``ok``).
        note: what the input is, for the documentation table and assertion messages.
        windows: windows an extracted video must get.
        flag: a fragment its ``flags`` column must contain (empty: no flag expected).
    """

    video_id: str
    expected: str
    reason: str
    note: str
    windows: int = 1
    flag: str = ""


@dataclass
class Corpus:
    """The written corpus.

    Attributes:
        root: the videos folder (``root/<class>/<file>``).
        items: every file the extraction sees, by video id.
        skipped: corpus items that could not be written here, with the reason.
        outside: a valid video outside ``root`` (for the manifest path-escape rule).
    """

    root: Path
    items: dict[str, CorpusItem] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    outside: Path | None = None

    def add(self, video_id: str, expected: str, reason: str, note: str, windows: int = 1, flag: str = "") -> None:
        """Record one item."""
        self.items[video_id] = CorpusItem(video_id, expected, reason, note, windows, flag)

    def expected_ok(self) -> list[str]:
        """Ids that must be extracted."""
        return sorted(k for k, v in self.items.items() if v.expected == "ok")

    def expected_failures(self) -> dict[str, str]:
        """Id -> status of the inputs that must be recorded as failures."""
        return {k: v.expected for k, v in self.items.items() if v.expected != "ok"}


def root_reads_everything() -> bool:
    """Whether this process bypasses file permissions (root, or CAP_DAC_OVERRIDE): ``chmod 000`` stays readable."""
    probe = Path(os.environ.get("TMPDIR", "/tmp")) / f".avzsl-perm-check-{os.getpid()}"
    probe.write_bytes(b"x")
    try:
        probe.chmod(0)
        try:
            with probe.open("rb"):
                return True
        except PermissionError:
            return False
    finally:
        probe.chmod(0o600)
        probe.unlink()


def write_with_codecs(
    path: Path,
    video_codec: str,
    audio_codec: str,
    size: tuple[int, int] = SMALL,
    duration_s: float = DURATION_S,
    fps: int = 25,
    pix_fmt: str = "yuv420p",
    sample_rate: int = 48000,
    video_options: dict[str, str] | None = None,
) -> Path:
    """Write a lossy test video with any encoder pair PyAV's FFmpeg has (container from the suffix).

    Args:
        path: output file (``.webm``, ``.mpg``, ``.mkv``, ``.avi`` ...).
        video_codec / audio_codec: FFmpeg encoder names (``libvpx-vp9``, ``mpeg2video``, ``ffv1``, ``mpeg4``;
            ``libopus``, ``mp2``, ``flac``, ``libmp3lame``, ``pcm_s16le`` ...).
        size: (width, height).
        duration_s: video and audio length.
        fps: frame rate (25: MPEG-2 only allows the standard rates).
        pix_fmt: pixel format of the video encoder.
        sample_rate: audio rate of the file.
        video_options: encoder options.
    """
    width, height = size
    with av.open(str(path), mode="w") as container:
        vstream = container.add_stream(video_codec, rate=fps)
        vstream.width, vstream.height, vstream.pix_fmt = width, height, pix_fmt
        if video_options:
            vstream.options = video_options
        astream = container.add_stream(audio_codec, rate=sample_rate, layout="mono")
        for i in range(round(duration_s * fps)):
            frame = av.VideoFrame.from_ndarray(frame_pattern(i, height, width), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in vstream.encode(frame):
                container.mux(packet)
        for packet in vstream.encode():
            container.mux(packet)
        samples = audio_tone(round(duration_s * sample_rate), sample_rate, 500.0)
        if audio_codec in ("libopus", "opus"):
            _encode_audio_fixed(container, astream, samples, sample_rate, 960)
        else:
            _encode_audio(container, astream, samples, sample_rate)
    return path


def _encode_audio_fixed(container, stream, samples: np.ndarray, sample_rate: int, frame_size: int) -> None:  # noqa: ANN001
    """Encode in frames of exactly ``frame_size`` samples (Opus refuses the 4096-sample chunks of ``media``)."""
    n = samples.shape[1]
    for start in range(0, n, frame_size):
        piece = samples[:, start : start + frame_size]
        if piece.shape[1] < frame_size:
            piece = np.pad(piece, ((0, 0), (0, frame_size - piece.shape[1])))
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece), format="s16p", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = start
        frame.time_base = Fraction(1, sample_rate)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def write_uhd(path: Path, size: tuple[int, int] = UHD, fps: int = 10, duration_s: float = DURATION_S) -> Path:
    """A 3840x2160 H.264 + AAC video, written fast (cheap frames, 10 fps: 12 frames; ``write_av`` takes ~15 s)."""
    width, height = size
    base = np.zeros((height, width, 3), dtype=np.uint8)
    base[..., 0] = (np.arange(width) % 256).astype(np.uint8)[None, :]
    base[..., 2] = 90
    with av.open(str(path), mode="w") as container:
        vstream = container.add_stream("libx264", rate=fps)
        vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
        vstream.options = {"preset": "ultrafast", "crf": "30"}
        astream = container.add_stream("aac", rate=44100, layout="mono")
        side = height // 6
        for i in range(round(duration_s * fps)):
            rgb = base.copy()
            x0 = (i * width // 16) % (width - side)
            rgb[height // 2 - side // 2 : height // 2 + side // 2, x0 : x0 + side] = (250, 250, 20)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in vstream.encode(frame):
                container.mux(packet)
        for packet in vstream.encode():
            container.mux(packet)
        _encode_audio(container, astream, audio_tone(round(duration_s * 44100), 44100, 800.0), 44100)
    return path


def _truncate_mid_stream(src: Path, dst: Path, keep: float) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    src.unlink()


def write_extras(corpus: Corpus) -> None:
    """Add the other codecs/containers and the cut Matroska to ``corpus`` (class folders ``green`` and ``red``)."""
    root = corpus.root
    (root / "green").mkdir(parents=True, exist_ok=True)
    (root / "red").mkdir(parents=True, exist_ok=True)
    whole = write_av(root / "red" / "_whole.mkv", duration_s=2.2, size=SMALL)
    _truncate_mid_stream(whole, root / "red" / "cut.mkv", 0.4)
    corpus.add("red/cut.mkv", "ok", "", "Matroska declaring 2.2 s cut at 40 % of its bytes: the readable prefix "
               "gives one window, the second (no frame of its own) is dropped", flag="frames_missing: 1 of 2")
    codecs = set(av.codecs_available)
    if {"libvpx-vp9", "libopus"} <= codecs:
        write_with_codecs(root / "green" / "vp9.webm", "libvpx-vp9", "libopus",
                          video_options={"deadline": "realtime", "cpu-used": "8"})
        corpus.add("green/vp9.webm", "ok", "", "VP9 + Opus in WebM")
    else:
        corpus.skipped["green/vp9.webm"] = "PyAV's FFmpeg has no libvpx-vp9/libopus encoder"
    write_with_codecs(root / "green" / "mpeg2.mpg", "mpeg2video", "mp2", sample_rate=44100)
    corpus.add("green/mpeg2.mpg", "ok", "", "MPEG-2 video + MP2 audio in MPEG-PS (.mpg)")
    write_with_codecs(root / "green" / "lossless.mkv", "ffv1", "flac", pix_fmt="yuv420p")
    corpus.add("green/lossless.mkv", "ok", "", "FFV1 + FLAC in Matroska")
    write_with_codecs(root / "green" / "old.avi", "mpeg4", "pcm_s16le", sample_rate=22050)
    corpus.add("green/old.avi", "ok", "", "MPEG-4 Part 2 + PCM in AVI")


def make_corpus(root: Path, extras: bool = True) -> Corpus:
    """Write the bad-input corpus under ``root`` (created) and return what each file must get.

    Args:
        root: videos folder to create.
        extras: include the other codecs/containers (VP9/WebM, MPEG-2/MPG, FFV1/MKV, MPEG-4/AVI) and the cut
            Matroska; without them the corpus needs 7 encoder forwards instead of 12 (the default test suite
            extracts the smaller corpus and decodes the extras without the encoders).
    """
    root = Path(root)
    corpus = Corpus(root)
    for name in ("red", "blue", "dog", "cat"):
        (root / name).mkdir(parents=True, exist_ok=True)

    # --- inputs that must fail, each with its own status --------------------------------------------------------
    (root / "red" / "empty.mp4").write_bytes(b"")
    corpus.add("red/empty.mp4", "empty_file", "0 bytes", "zero-byte file")

    whole = write_av(root / "red" / "_whole.mp4", duration_s=DURATION_S, size=SMALL)
    _truncate_mid_stream(whole, root / "red" / "truncated.mp4", 0.6)
    corpus.add("red/truncated.mp4", "unreadable", "invalid data", "mp4 cut at 60 % of its bytes (index lost)")

    write_text_as_mp4(root / "red" / "notes.mp4")
    corpus.add("red/notes.mp4", "unreadable", "invalid data", "text file named .mp4")

    write_video_only(root / "red" / "silent.mp4", duration_s=DURATION_S, size=SMALL)
    corpus.add("red/silent.mp4", "no_audio", "no audio stream", "video without audio stream")

    write_audio_only(root / "red" / "audio_only.mp4", duration_s=DURATION_S)
    corpus.add("red/audio_only.mp4", "no_video", "no video stream", "AAC audio only, .mp4 name")

    write_av(root / "red" / "short.mp4", duration_s=0.5, size=SMALL)
    corpus.add("red/short.mp4", "too_short", "< 1 s", "0.5 s: shorter than one window")

    loop = root / "red" / "loop.mp4"
    loop.symlink_to("loop.mp4")
    corpus.add("red/loop.mp4", "not_a_file", "symbolic link loop", "symlink pointing at itself")
    (root / "red" / "dangling.mp4").symlink_to("does-not-exist.mp4")
    corpus.add("red/dangling.mp4", "not_a_file", "broken symbolic link", "symlink to a missing file")
    # A symlinked folder pointing back up: discovery must not follow it (no endless walk, no duplicates).
    (root / "red" / "again").symlink_to("..", target_is_directory=True)

    locked = write_av(root / "red" / "locked.mp4", duration_s=DURATION_S, size=SMALL, freq_hz=700)
    locked.chmod(0)
    if root_reads_everything():
        corpus.add("red/locked.mp4", "ok", "", "chmod 000 file; root bypasses permissions, so it is extracted")
    else:
        corpus.add("red/locked.mp4", "unreadable", "permission denied", "chmod 000 file")

    # --- odd but valid inputs: all extracted -----------------------------------------------------------------------
    write_vfr(root / "blue" / "vfr.mp4", [0, 1, 2, 5, 6, 7, 12, 13, 20, 21, 22, 23, 30, 31, 33, 36], fps=30,
              size=SMALL, audio_s=DURATION_S)
    corpus.add("blue/vfr.mp4", "ok", "", "variable frame rate (gaps of up to 7 frames)")
    write_av(root / "blue" / "rotated.mp4", duration_s=DURATION_S, size=SMALL, rotation=90, freq_hz=350)
    corpus.add("blue/rotated.mp4", "ok", "", "display-matrix rotation 90 degrees")
    write_uhd(root / "blue" / "uhd.mp4")
    corpus.add("blue/uhd.mp4", "ok", "", "3840x2160 H.264 (downscaled while decoding)")

    if extras:
        write_extras(corpus)

    write_av(root / "dog" / UNICODE_NAME, duration_s=DURATION_S, size=SMALL, freq_hz=420)
    corpus.add(f"dog/{UNICODE_NAME}", "ok", "", "non-ASCII name with spaces")
    write_av(root / "dog" / LATIN1_NAME, duration_s=DURATION_S, size=SMALL, freq_hz=470)
    corpus.add(LATIN1_ID, "ok", "", "file name that is not UTF-8 (Latin-1 byte 0xe9)", flag="escaped_name")

    # --- timing faults: extracted, with a flag in the manifest ------------------------------------------------------
    # Frames at 0-1 s and 20-21.2 s, audio throughout: 21 planned windows, 19 without a frame are not encoded.
    write_vfr(root / "blue" / "gap.mp4", [*range(30), *range(600, 636)], fps=30, size=SMALL, audio_s=21.2)
    corpus.add("blue/gap.mp4", "ok", "", "timestamp gap: frames at 0-1 s and 20-21.2 s", windows=2,
               flag="frames_missing: 19 of 21")
    write_av(root / "blue" / "short_audio.mp4", duration_s=3.0, size=SMALL, audio_duration_s=0.2, freq_hz=530)
    corpus.add("blue/short_audio.mp4", "ok", "", "3-s video with 0.2 s of audio", windows=3, flag="short_audio")
    write_av(root / "dog" / "same.mp4", duration_s=DURATION_S, size=SMALL, color=(10, 200, 10), freq_hz=610)
    write_av(root / "cat" / "same.mp4", duration_s=DURATION_S, size=SMALL, color=(10, 10, 200), freq_hz=910)
    corpus.add("dog/same.mp4", "ok", "", "same file stem as cat/same.mp4")
    corpus.add("cat/same.mp4", "ok", "", "same file stem as dog/same.mp4")

    outside = root.parent / f"{root.name}-outside"
    outside.mkdir(exist_ok=True)
    corpus.outside = write_av(outside / "elsewhere.mp4", duration_s=DURATION_S, size=SMALL)
    return corpus
