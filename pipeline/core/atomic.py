"""Atomic file writes: write a temporary file in the same directory, fsync, then ``os.replace``.

A reader therefore sees either the old file or the complete new one, never a partial write, even when the
writer is killed with SIGKILL.
"""

from __future__ import annotations

import csv
import glob
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from avzsl.pipeline.core.faults import crash_point
from avzsl.pipeline.core.filenames import escape_cells


def current_umask() -> int:
    """The process umask, read without changing it where ``/proc`` tells it (``os.umask`` sets it to read it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def fsync_file(path: Path) -> None:
    """Flush a closed file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_path)`` then move the result onto ``path`` atomically.

    The temporary file lives beside ``path`` (same file system, so the rename is atomic) and is removed when
    ``write`` raises.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        # mkstemp creates mode 600; a file written by open() would get 666 minus the umask: give it that.
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    try:
        try:
            write(tmp)
        except OSError as exc:
            if exc.filename is None:  # write() errors carry no file name: name the target for the message
                raise OSError(exc.errno, exc.strerror, str(path)) from exc
            raise
        fsync_file(tmp)
        crash_point(f"before-rename:{path.name}")
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


TEMPORARY_RANDOM = "[a-z0-9_]+"
"""What :func:`tempfile.mkstemp` puts between the prefix and the suffix of a temporary name (its alphabet)."""


def temporaries_of(path: Path) -> list[Path]:
    """Temporary files that interrupted :func:`atomic_write` calls for ``path`` left beside it, sorted.

    They are named ``.<name>.<random>.tmp`` (``<random>`` from mkstemp's alphabet): a name only avzsl's writer of
    ``path`` uses, so a user's ``notes.tmp`` or ``.<name>.tmp`` never matches. Only call this while holding the lock
    of whoever writes ``path``: a live writer's temporary file matches too.
    """
    path = Path(path)
    name = re.compile(rf"\.{re.escape(path.name)}\.{TEMPORARY_RANDOM}\.tmp")
    return sorted(p for p in path.parent.glob(f".{glob.escape(path.name)}.*.tmp")
                  if name.fullmatch(p.name) and p.is_file() and not p.is_symlink())


def remove_temporaries_of(targets: Iterable[Path]) -> list[Path]:
    """Delete what interrupted :func:`atomic_write` calls for the files ``targets`` left (:func:`temporaries_of`);
    returns what was removed.

    Only the temporaries of files avzsl writes are named, never a pattern like ``*.tmp``: a user's own files in an
    output folder are not avzsl's to delete. Call this while holding the lock of whoever writes ``targets``.
    """
    removed = [tmp for target in targets for tmp in temporaries_of(target)]
    for tmp in removed:
        tmp.unlink(missing_ok=True)
    return removed


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write(Path(path), lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV file (header + rows, ``\n`` line ends, quoting as needed) to ``path`` atomically.

    String cells holding bytes of a non-UTF-8 file name are written escaped (``\\xNN``, see ``core/filenames.py``).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(escape_cells(rows))
    atomic_write_text(path, out.getvalue())
