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
The vectors are loaded by :mod:`avzsl.extractors.text.vectors`, which never unpickles. Policies and licences:
``docs/encoders.md``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from avzsl.extractors.text.vectors import (
    GLOVE_PACKAGE,
    Kind,
    fingerprint_file,
    glove_source_info,
    load_glove_6b_50d,
    load_vectors_file,
    release_cached_vectors,
)

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

_logger = logging.getLogger(__name__)

OOVPolicy = Literal["error", "skip", "split"]
OOV_POLICIES = ("error", "skip", "split")
MIN_PIECE = 3  # shortest piece when splitting an out-of-vocabulary compound word (no one- or two-letter scraps)

_SEPARATORS = re.compile(r"[\W_]+")  # anything that is not a letter or digit (unicode-aware)
# What an out-of-vocabulary error offers under the "error" and "split" policies (a command line offers its options).
OOV_HINT = "pass explicit phrases, or oov='skip' to drop missing words"

# GLOVE_PACKAGE, fingerprint_file and release_cached_vectors live in text.vectors; they are re-exported for the
# pipeline's run checks, which import them from here.
__all__ = [
    "GLOVE_PACKAGE",
    "OOV_HINT",
    "OOV_POLICIES",
    "ClassNameEmbedder",
    "EmbeddedClasses",
    "OOVError",
    "fingerprint_file",
    "phrase_of",
    "release_cached_vectors",
    "split_class_name",
]


# Recorded in every cache's class table and cache.json identity: a stable name, not this module's path (it moved from
# avzsl.extractors.word_vectors; caches written before must keep matching, or a rerun would refuse them).
EMBEDDER = "avzsl.extractors.word_vectors.ClassNameEmbedder"

class OOVError(ValueError):
    """Class names whose words are missing from the vectors.

    Attributes:
        missing: class name -> its missing words (every affected class, not only the first).
        hint: the part of the message that says what to do in Python terms (:data:`OOV_HINT`), or "" when only
            other words help; a command line replaces it with its options.
    """

    def __init__(self, message: str, missing: dict[str, list[str]], hint: str = "") -> None:
        super().__init__(message)
        self.missing = missing
        self.hint = hint


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
            self.source_info: dict[str, Any] = glove_source_info()
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
            "embedder": EMBEDDER,
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

    def phrase_vector(self, text: str) -> np.ndarray | None:
        """Unit-norm ``(D,)`` float32 vector of ``text`` with its unknown words dropped, or None when no word is
        known; never raises or logs (for many labels at once, e.g. a classifier's label names)."""
        vector, _ = self._phrase_vector(text if self.kind == "fasttext" else phrase_of(text))
        if vector is None or not np.any(vector):
            return None
        return (vector / np.linalg.norm(vector)).astype(np.float32)

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
            hint = "" if self.oov == "skip" else OOV_HINT
            message = self._oov_message(unusable if self.oov == "skip" else missing, names, chosen, hint)
            raise OOVError(message, missing, hint)
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

    def _oov_message(self, missing: dict[str, list[str]], names: list[str], phrases: list[str], hint: str) -> str:
        phrase_by_name = dict(zip(names, phrases, strict=True))
        source = self.source_info.get("path") or self.source_info.get("package") or self.source_info["description"]
        lines = [f"{n!r} (phrase {phrase_by_name[n]!r}): {', '.join(words)}" for n, words in missing.items()]
        advice = hint or "a class needs at least one known word"
        return (
            f"{len(missing)} class name(s) have words missing from the {self.kind} vectors ({source}); {advice}:\n  "
            + "\n  ".join(lines)
        )
