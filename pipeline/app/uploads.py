"""Uploaded files: kept within a size limit, recognised as a video container by their first bytes (never by their
name) before FFmpeg sees them, written under a private temporary folder that the request deletes.

The first bytes of a file name its container (ISO BMFF ``ftyp`` for MP4/MOV/3GP, the EBML header of Matroska/WebM,
``RIFF....AVI``, ``OggS``, ``FLV``, MPEG-TS sync bytes, an MPEG-PS pack header, ASF); anything else is refused with a
message saying what the file looks like. The file is then saved under a name the server makes (``0.mp4``), so a
client's file name never becomes a path. FFmpeg's probe (in the prediction) decides whether the container really
holds a decodable video stream; its failure is that video's error on the page.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import BinaryIO

SNIFF_BYTES = 256  # an MPEG-TS file is told by its sync bytes at 0 and 188
COPY_CHUNK = 1 << 20

# (offset, signature bytes, container name, suffix the saved file gets)
_SIGNATURES: tuple[tuple[int, bytes, str, str], ...] = (
    (4, b"ftyp", "MP4/QuickTime", ".mp4"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM", ".mkv"),
    (0, b"OggS", "Ogg", ".ogv"),
    (0, b"FLV\x01", "FLV", ".flv"),
    (0, b"\x00\x00\x01\xba", "MPEG program stream", ".mpg"),
    (0, b"\x30\x26\xb2\x75\x8e\x66\xcf\x11", "ASF/WMV", ".wmv"),
)
# What a refused file looks like, for the message.
_OTHER_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"), (b"ID3", "an MP3 audio file"),
    (b"fLaC", "a FLAC audio file"), (b"\x7fELF", "a program"),
)


class UploadRefusedError(ValueError):
    """An upload that is not taken: too large or not a video container (the message says which)."""


def display_name(filename: str | None, index: int) -> str:
    """The name a file is shown under: its base name only (no folders), or ``upload-N`` when it has none."""
    name = PurePath((filename or "").replace("\\", "/")).name.strip()
    return name[:200] if name else f"upload-{index + 1}"


def sniff_container(head: bytes) -> tuple[str, str]:
    """(container name, suffix) of a file's first bytes.

    Raises:
        UploadRefusedError: no video container starts with these bytes (the message says what the file looks like).
    """
    for offset, signature, name, suffix in _SIGNATURES:
        if head[offset:offset + len(signature)] == signature:
            return name, suffix
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI", ".avi"
    if len(head) > 188 and head[0] == 0x47 and head[188] == 0x47:
        return "MPEG transport stream", ".ts"
    if not head:
        raise UploadRefusedError("not a video: the file is empty")
    looks = next((what for signature, what in _OTHER_SIGNATURES if head.startswith(signature)), None)
    if looks is None:
        looks = "text" if _is_text(head) else "data of no known video format"
    raise UploadRefusedError(f"not a video: its content is {looks} (by its bytes, not its name); upload MP4, MKV/WebM, "
                        "AVI, MOV, Ogg, FLV, MPEG or WMV")


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@dataclass
class SavedUpload:
    """An upload written to the request's temporary folder: shown ``name``, the file, its container, its size."""

    name: str
    path: Path
    container: str
    size: int


def save_upload(stream: BinaryIO, size: int | None, folder: Path, index: int, name: str,
                max_bytes: int) -> SavedUpload:
    """Check and copy one uploaded file into ``folder`` as ``<index><suffix>``.

    Args:
        stream: the upload's file object (positioned at its start).
        size: its size when known (checked before reading).
        folder: the request's temporary folder.
        index: the upload's position (its saved name).
        name: its display name (messages only).
        max_bytes: the largest upload taken.

    Raises:
        UploadRefusedError: larger than ``max_bytes`` or not a video container.
    """
    limit_text = f"{max_bytes:,} bytes ({max_bytes / 2**20:.1f} MiB) per file"
    if size is not None and size > max_bytes:
        raise UploadRefusedError(f"too large: {size:,} bytes, the limit is {limit_text}")
    head = stream.read(SNIFF_BYTES)
    container, suffix = sniff_container(head)
    path = folder / f"{index}{suffix}"
    written = len(head)
    with path.open("wb") as out:
        out.write(head)
        while chunk := stream.read(COPY_CHUNK):
            written += len(chunk)
            if written > max_bytes:  # the size was not given, or not true
                raise UploadRefusedError(f"too large: over the limit of {limit_text}")
            out.write(chunk)
    return SavedUpload(name, path, container, written)


@contextmanager
def upload_folder() -> Iterator[Path]:
    """A private temporary folder for one request's uploads, deleted when the request is answered (or fails)."""
    folder = Path(tempfile.mkdtemp(prefix="avzsl-app-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
