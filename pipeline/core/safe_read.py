"""Reading the small files of a cache or run directory without trusting what is there.

Anything can stand under a name avzsl uses: a FIFO (opening it for reading blocks until someone writes), a symlink
to ``/dev/zero`` (reading never ends), a 16 GiB sparse file (read whole, it exhausts memory). Every read here opens
the file without blocking (``O_NONBLOCK``), accepts only a regular file (``fstat``), checks its size against a bound
before reading and reads at most that bound. A refusal names the file and says what it is.

:func:`read_json_file` is the one reader of the JSON files of run and cache directories (``config.json``,
``metrics.json``, ``cache.json``, ...); :func:`check_regular` is for files another library opens by name (HDF5).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from avzsl.pipeline.core.errors import UserError

MAX_JSON_BYTES = 64 << 20
"""The largest JSON file of a run or cache avzsl reads (the largest it writes, a big cache's ``cache.json`` with one
content record per shard, is well under 1 MiB)."""


class UnreadableFileError(UserError):
    """A file under a name avzsl uses is not one avzsl wrote: not a regular file, or far too large."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK,
                       "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory"),
                       (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a plain file"


def _not_regular(path: Path, what: str) -> UnreadableFileError:
    return UnreadableFileError(
        f"{path}: not a regular file ({what}); avzsl reads only regular files here and did not write this one: "
        "move it away and run the command again"
    )


def check_regular(path: Path) -> os.stat_result:
    """``os.stat`` of ``path`` (symlinks followed), refusing anything but a regular file before a library opens it.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnreadableFileError: it is a FIFO, a device, a directory, ...
    """
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise _not_regular(Path(path), _kind(info.st_mode))
    return info


def read_bounded(path: Path, limit: int, what: str, follow_symlinks: bool = True) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Args:
        path: the file.
        limit: its largest allowed size in bytes.
        what: what the file is, for the message ("a config.json").
        follow_symlinks: False refuses a symlink itself (``O_NOFOLLOW``), e.g. for lock files.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnreadableFileError: not a regular file (a FIFO is refused at once, never waited on), or larger than
            ``limit`` (refused before anything is read).
    """
    path = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_symlinks else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if not follow_symlinks and os.path.islink(path):
            raise _not_regular(path, f"a symbolic link to {os.readlink(path)}") from exc
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path, _kind(info.st_mode))
        if info.st_size > limit:
            raise UnreadableFileError(
                f"{path}: too large ({info.st_size} bytes; {what} written by avzsl is at most {limit} bytes), so "
                "not a file avzsl wrote: move it away and run the command again"
            )
        chunks = []
        remaining = limit + 1  # one byte more than allowed tells a file that grew since fstat
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            raise UnreadableFileError(f"{path}: grew past {limit} bytes while it was read; run the command again")
        return data
    finally:
        os.close(fd)


def read_text_file(path: Path, limit: int = MAX_JSON_BYTES, what: str = "such a file") -> str:
    """The UTF-8 text of the regular file ``path`` (at most ``limit`` bytes; see :func:`read_bounded`)."""
    return read_bounded(path, limit, what).decode("utf-8")


def read_json_file(path: Path, limit: int = MAX_JSON_BYTES) -> Any:
    """The JSON value in the regular file ``path`` (at most ``limit`` bytes; see :func:`read_bounded`).

    Raises:
        UnreadableFileError: not a regular file, or too large.
        json.JSONDecodeError, UnicodeDecodeError: not JSON (the caller says what that means for its file).
    """
    return json.loads(read_text_file(path, limit, f"a {Path(path).name}"))
