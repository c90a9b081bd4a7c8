"""HDF5 files of a cache: built in memory and written with ordinary file I/O, string datasets, the per-dataset
checksums written with every file and compared when it is read, and :func:`open_h5`, the one way a cache file is
opened for reading.

A cache reads only its own files. HDF5 can make a dataset read another file: an external link, external storage
(the data kept in a raw file named in the dataset, possibly a FIFO, where a read blocks for ever), or a virtual
dataset whose sources are other files. avzsl writes none of these except the virtual datasets of ``index.h5``, whose
sources are the cache's shards by relative name (``shards/shard-00000.h5``). :func:`open_h5` refuses everything
else before any data is read, naming the file, the dataset and the other file.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avzsl.pipeline.cache.layout import RERUN, SHARD_DIR
from avzsl.pipeline.core.atomic import atomic_write
from avzsl.pipeline.core.checksums import array_digest, strings_digest
from avzsl.pipeline.core.errors import CacheError
from avzsl.pipeline.core.filenames import escape_name
from avzsl.pipeline.core.safe_read import UnreadableFileError, check_regular

STRING_DTYPE = h5py.string_dtype(encoding="utf-8")
DIGESTS_ATTR = "sha256"  # JSON {dataset name: SHA-256 of its content}, on shards, the class table and the index
STRING_DATASETS = ("video_id", "class_name", "name", "phrase", "video_records", "provenance")
"""Datasets (and JSON attributes) whose content is text: their digests are taken over the strings."""
_VIRTUAL_SOURCE = re.compile(rf"{SHARD_DIR}/shard-\d{{5,}}\.h5")
"""The only virtual-dataset source avzsl writes: a shard, by its name relative to ``index.h5``."""


def _foreign(path: Path, what: str) -> CacheError:
    return CacheError(f"{path}: {what}; a cache reads only its own files, and avzsl did not write this: delete "
                      f"{Path(path).name} and {RERUN}")


def _check_dataset(path: Path, name: str, dset: h5py.Dataset, virtual_ok: bool) -> list[Path]:
    """Refuse external storage and virtual sources other than the cache's shards; returns those shards."""
    external = dset.external
    if external:
        files = ", ".join(str(e[0].decode() if isinstance(e[0], bytes) else e[0]) for e in external)
        raise _foreign(path, f"dataset {name!r} keeps its data in {files} (HDF5 external storage)")
    sources = []
    if dset.is_virtual:
        for source in dset.virtual_sources():
            if not virtual_ok or not _VIRTUAL_SOURCE.fullmatch(source.file_name):
                raise _foreign(path, f"dataset {name!r} reads from {source.file_name} (a virtual dataset source "
                                     "outside the cache)")
            sources.append(Path(path).parent / source.file_name)
    return sources


def check_own_storage(path: Path, f: h5py.File, virtual_ok: bool = True) -> list[Path]:
    """Refuse an HDF5 file of a cache in which any object would make HDF5 read another file.

    Every link is looked at without following it (``getlink=True``): external and soft links are refused (avzsl
    writes neither). Every dataset's storage is looked at: external storage is refused; a virtual dataset may only
    read the cache's shards by relative name, and only where ``virtual_ok`` (in a shard, whose data must be its
    own, no virtual dataset is accepted). Nothing is read from a dataset.

    Returns:
        The shard files the virtual datasets read (to be checked in turn before their data is read).

    Raises:
        CacheError: naming ``path``, the object and the other file.
    """
    sources: list[Path] = []

    def walk(group: h5py.Group, prefix: str) -> None:
        for key in group:
            name = f"{prefix}{key}"
            link = group.get(key, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise _foreign(path, f"{name!r} is an external link to {link.filename} ({link.path})")
            if isinstance(link, h5py.SoftLink):
                raise _foreign(path, f"{name!r} is a soft link to {link.path}")
            item = group[key]
            if isinstance(item, h5py.Group):
                walk(item, name + "/")
            elif isinstance(item, h5py.Dataset):
                sources.extend(_check_dataset(path, name, item, virtual_ok))

    walk(f, "")
    return list(dict.fromkeys(sources))


@contextlib.contextmanager
def open_h5(path: Path, virtual_ok: bool = True) -> Iterator[h5py.File]:
    """Open an HDF5 file of a cache for reading, after checking that it reads only the cache's files.

    The path must be a regular file (a FIFO would block ``H5Fopen``), and :func:`check_own_storage` must accept the
    file and every shard its virtual datasets read (checked in turn, with ``virtual_ok=False``).

    Raises:
        FileNotFoundError, OSError: the file is missing or HDF5 cannot open it (callers treat that as damaged).
        CacheError: a FIFO or other non-regular file, or an object that reads another file; names the file.
    """
    path = Path(path)
    try:
        check_regular(path)
    except UnreadableFileError as exc:
        raise CacheError(str(exc)) from exc
    with h5py.File(path, "r") as f:
        for source in check_own_storage(path, f, virtual_ok):
            if source.exists():  # a missing shard is reported by the reader (rows read as NaN, content record)
                with open_h5(source, virtual_ok=False):
                    pass
        yield f


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
