"""HDF5 files of a cache: built in memory and written with ordinary file I/O, string datasets, and the per-dataset
checksums written with every file and compared when it is read."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avzsl.pipeline.cache.layout import RERUN
from avzsl.pipeline.core.atomic import atomic_write
from avzsl.pipeline.core.checksums import array_digest, strings_digest
from avzsl.pipeline.core.errors import CacheError
from avzsl.pipeline.core.filenames import escape_name

STRING_DTYPE = h5py.string_dtype(encoding="utf-8")
DIGESTS_ATTR = "sha256"  # JSON {dataset name: SHA-256 of its content}, on shards, the class table and the index
STRING_DATASETS = ("video_id", "class_name", "name", "phrase", "video_records", "provenance")
"""Datasets (and JSON attributes) whose content is text: their digests are taken over the strings."""


@contextlib.contextmanager
def _in_memory() -> Iterator[tuple[h5py.File, io.BytesIO]]:
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as f:
        yield f, buffer


@contextlib.contextmanager
def write_h5(path: Path) -> Iterator[h5py.File]:
    """Build an HDF5 file in memory and, when the block ends normally, write its bytes to ``path`` (not atomic:
    the writer inside :func:`~avzsl.pipeline.core.atomic.atomic_write`, or see :func:`write_h5_atomically`).

    HDF5 reports a failed write (disk full, file size limit) as a ``RuntimeError`` and can leave its library
    state broken (a full disk under ``h5py.File(path, "w")`` was seen to end in a segfault while closing). Writing
    the finished bytes with ordinary file I/O turns that into a clean ``OSError`` (``ENOSPC``, ``EFBIG``) that the
    command-line tools report in one line; ``path`` is removed when that write fails. The file is held in memory
    once (a shard is at most ``shard_size`` videos of features).
    """
    path = Path(path)
    with _in_memory() as (f, buffer):
        yield f
    try:
        with path.open("wb") as out:
            out.write(buffer.getbuffer())
    except OSError as exc:
        path.unlink(missing_ok=True)
        if exc.filename is None:  # write() errors carry no file name: add it for the one-line message
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def write_h5_atomically(path: Path) -> Iterator[h5py.File]:
    """Like :func:`write_h5`, but the bytes go through :func:`~avzsl.pipeline.core.atomic.atomic_write`: a
    temporary file beside ``path``, fsynced, crash point ``before-rename:<name>``, renamed onto ``path``. A reader
    sees the old file or the complete new one; a failed write leaves no temporary file."""
    with _in_memory() as (f, buffer):
        yield f
    atomic_write(Path(path), lambda tmp: tmp.write_bytes(buffer.getbuffer()))


def put_strings(f: h5py.File, name: str, values: list[str], digests: dict[str, str]) -> None:
    """A UTF-8 string dataset (non-UTF-8 file-name bytes escaped as ``\\xNN``) and its digest."""
    values = [escape_name(v) for v in values]
    f.create_dataset(name, data=np.array(values, dtype=object), dtype=STRING_DTYPE)
    digests[name] = strings_digest(values)


def read_dataset(f: h5py.File, name: str) -> Any:
    """A dataset's content as its digest sees it: a list of str for string datasets, else an array."""
    if name in STRING_DATASETS:
        data = f[name]
        return [data.asstr()[()]] if data.shape == () else list(data.asstr()[...])
    return f[name][...]


def digest_of(name: str, value: Any) -> str:
    """The digest of dataset ``name`` holding ``value`` (as :func:`read_dataset` returns it)."""
    return strings_digest(value) if name in STRING_DATASETS else array_digest(value)


def stored_digests(f: h5py.File) -> dict[str, str]:
    """The per-dataset digests written with an HDF5 file (empty for files of older avzsl versions)."""
    raw = f.attrs.get(DIGESTS_ATTR)
    if raw is None:
        return {}
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def verify_datasets(path: Path, f: h5py.File, values: dict[str, Any], what: str) -> None:
    """Compare already-read dataset contents with the digests stored in ``f``; raises naming the file."""
    digests = stored_digests(f)
    for name, value in values.items():
        if name in digests and digest_of(name, value) != digests[name]:
            raise CacheError(
                f"{path}: {what} checksum mismatch in {name!r} (the file changed after it was written); {RERUN}"
            )
