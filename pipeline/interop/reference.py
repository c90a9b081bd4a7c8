"""What the reference loader (ExplainableML/AVCA-GZSL, ``src/dataset.py``) needs beyond the feature files.

ClipClap-GZSL's loader is built on it and reads ``class-split/`` and its text dicts the same way, so both exports
(``interop/avca/exporter.py``, ``interop/clipclap/exporter.py``) write them with this module.

The reference ``UCFDataset`` / ``ActivityNetDataset`` / ``VGGSoundDataset`` open, under ``--root_dir``:

* ``class-split/all_class.txt``: ALL classes of the original dataset; class id = index in ``sorted(all_class)``
  (lower-cased keys for UCF and ActivityNet, exact for VGGSound);
* ``class-split/<--zero_shot_split>/stage_*.txt``: class lists per stage split (read with ``sorted``);
* ``class-split/<ds>_w2v_class_names.csv``: ``manual -> original`` (``text_label_mapping``; every key of the
  embedding dict must be a ``manual`` entry, its ``original`` a class of ``all_class.txt``);
* ``features/<method>/text/word_embeddings_<ds>_normed.npy``: the dict, turned into a table as
  ``list(dict(sorted(d.items())).values())`` (sorted by PHRASE) and indexed by class id
  (``text[sorted(self.classes)]``), so it needs an entry for every class id up to the largest one used, i.e. the
  benchmark's full class list (101 / 200 / 309), not only the classes of a cache.

Two orders of the written dict:

* ``by_phrase`` (default): every key holds its own class's vector, as in the released file. The reference then
  reproduces its published behaviour, including its positional mix-up (class id ``k`` gets the ``k``-th phrase's
  vector).
* ``by_class_id``: the vectors are permuted so that the ``k``-th key in phrase order holds the vector of class id
  ``k``; the unchanged reference code then gives every class its own embedding ("class-embedding order fixed").
  Such a file is NOT a correct phrase -> vector map; ``avzsl-import avca --embedding-order reference`` reads it
  back correctly.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from avzsl.data_manifests import all_classes, class_phrases, released_text_embeddings
from avzsl.pipeline.cache import ClassTable
from avzsl.pipeline.core.atomic import atomic_write_text
from avzsl.pipeline.core.errors import InvalidValueError
from avzsl.pipeline.interop.common import InteropError

_logger = logging.getLogger(__name__)

TEXT_ORDERS = ("by_phrase", "by_class_id")
# Benchmark key -> (data_manifests folder, name-map file the reference opens).
_MANIFEST = {
    "ucf": ("UCF", "ucf_w2v_class_names.csv"),
    "activitynet": ("ActivityNet", "activitynet_w2v_class_names.csv"),
    "vggsound": ("VGGSound", "vggsound_w2v_class_names.csv"),
}
_RELEASED_ATOL = 1e-6


@dataclass
class ReferenceText:
    """The embedding dict to write and what it took to make it.

    Attributes:
        text: ``{phrase: (D,) float32}`` in the order it will be written (sorted by phrase).
        all_classes: class names of ``all_class.txt`` (file order).
        filled_released: classes not in the cache whose entry is the released embedding (cache embeddings are the
            released ones).
        filled_zero: classes not in the cache whose entry is a zero vector (their embedding is not known).
        order: ``by_phrase`` or ``by_class_id``.
        zero_used: classes used by the split whose row in the reference's table is a zero vector.
    """

    text: dict[str, np.ndarray]
    all_classes: list[str]
    filled_released: list[str] = field(default_factory=list)
    filled_zero: list[str] = field(default_factory=list)
    order: str = "by_phrase"
    zero_used: list[str] = field(default_factory=list)


def manifest_text(dataset: str, name: str) -> str:
    """The text of a shipped benchmark file (``avzsl.data_manifests/<DS>/<name>``)."""
    folder = _MANIFEST[dataset][0]
    return resources.files("avzsl.data_manifests").joinpath(folder, name).read_text(encoding="utf-8")


def _released_matches(table: ClassTable, released: dict[str, np.ndarray], phrases: dict[str, str]) -> bool:
    """True when every class of the cache carries the released embedding of its benchmark phrase."""
    for name, vector in zip(table.names, table.embeddings, strict=True):
        ref = released.get(phrases.get(name.lower(), ""))
        if ref is None or ref.shape != vector.shape or not np.allclose(ref, vector, rtol=0, atol=_RELEASED_ATOL):
            return False
    return True


def reference_text(table: ClassTable, dataset: str | None, order: str = "by_phrase",
                   used_classes: Sequence[str] = (), phrase_map: Mapping[str, str] | None = None,
                   fill_released: bool = True) -> ReferenceText:
    """Build the embedding dict the reference loader can index by class id.

    Args:
        table: the cache's class table.
        dataset: benchmark key (``ucf``/``activitynet``/``vggsound``) or ``None`` (the cache's classes are the
            whole class list).
        order: ``by_phrase`` or ``by_class_id`` (module docstring).
        used_classes: classes of the split folder, to report those that would read a zero row.
        phrase_map: ``class name -> dict key`` replacing the benchmark's ``manual`` phrases (ClipClap's UCF keys
            are its ``clip_class_name`` column).
        fill_released: allow filling absent classes with the released fastText embeddings.

    Returns:
        A :class:`ReferenceText`.
    """
    if order not in TEXT_ORDERS:
        raise InvalidValueError(f"unknown text order {order!r}; expected one of {', '.join(TEXT_ORDERS)}")
    own = {n.lower(): np.asarray(v, np.float32) for n, v in zip(table.names, table.embeddings, strict=True)}
    result = ReferenceText({}, [], order=order)
    if dataset is None:
        names, phrase_of = list(table.names), {n.lower(): p for n, p in zip(table.names, table.phrases, strict=True)}
        vectors = {n.lower(): own[n.lower()] for n in names}
    else:
        names = all_classes(dataset)
        phrase_of = {k.lower(): v for k, v in (phrase_map or class_phrases(dataset)).items()}
        known = {n.lower() for n in names}
        foreign = [n for n in table.names if n.lower() not in known]
        if foreign:
            raise InteropError(f"the cache's class table has {len(foreign)} class(es) that are not {dataset} classes "
                            f"(all_class.txt): {foreign[:10]}; export without --dataset")
        released = (released_text_embeddings(dataset) or {}) if fill_released else {}
        use_released = bool(released) and _released_matches(table, released, phrase_of)
        dim = table.embeddings.shape[1]
        vectors = {}
        for name in names:
            key = name.lower()
            if key in own:
                vectors[key] = own[key]
            elif use_released:
                vectors[key] = released[phrase_of[key]].astype(np.float32)
                result.filled_released.append(name)
            else:
                vectors[key] = np.zeros(dim, np.float32)
                result.filled_zero.append(name)
    result.all_classes = list(names)
    phrases = {}
    for name in names:
        phrase = phrase_of[name.lower()]
        if phrase in phrases and not np.array_equal(vectors[phrases[phrase]], vectors[name.lower()]):
            raise InteropError(f"classes {phrases[phrase]!r} and {name!r} share the phrase {phrase!r} but not their "
                            "embedding")
        phrases[phrase] = name.lower()
    keys = sorted(phrases)  # the reference's dict(sorted(d.items()))
    if len(keys) != len(names):
        raise InteropError(f"{len(names)} classes map to only {len(keys)} distinct phrases; the reference indexes the "
                        "phrase-sorted table by class id and needs one entry per class")
    by_id = sorted(names)  # class id k = sorted(all_class)[k]
    if order == "by_phrase":
        result.text = {k: vectors[phrases[k]] for k in keys}
        seen_by_id = {c.lower(): phrases[keys[i]] for i, c in enumerate(by_id)}
    else:
        result.text = {k: vectors[by_id[i].lower()] for i, k in enumerate(keys)}
        seen_by_id = {c.lower(): c.lower() for c in by_id}
    zero = {n.lower() for n in result.filled_zero}
    result.zero_used = [c for c in used_classes if seen_by_id.get(c.lower()) in zero]
    return result


def name_map_file(dataset: str | None, text_file: str) -> str:
    """The name-map file name: the benchmark's, else ``<x>_w2v_class_names.csv`` for ``word_embeddings_<x>_normed``."""
    if dataset is not None:
        return _MANIFEST[dataset][1]
    match = re.fullmatch(r"word_embeddings_(.+)_normed\.npy", text_file)
    return f"{match.group(1) if match else 'custom'}_w2v_class_names.csv"


def write_class_split(out_dir: Path, dataset: str | None, splits_dir: Path, split_name: str,
                      ref: ReferenceText, table: ClassTable, map_name: str) -> Path:
    """Write ``out_dir/class-split/`` as the reference expects it; returns the folder.

    ``all_class.txt`` and the name map are the benchmark's files from ``avzsl.data_manifests`` (byte copies) when
    ``dataset`` is given, else built from the class table. ``<split_name>/`` receives the split folder's
    ``stage_*.txt`` and ``stage_*.csv`` files unchanged (the reference reads only the ``.txt`` lists).
    """
    if "/" in split_name or split_name in ("", ".", ".."):
        raise InteropError(f"{split_name!r}: the split folder name must be a plain folder name")
    target = Path(out_dir) / "class-split"
    if dataset is not None:
        atomic_write_text(target / "all_class.txt", manifest_text(dataset, "all_class.txt"))
        atomic_write_text(target / map_name, manifest_text(dataset, map_name))
    else:
        atomic_write_text(target / "all_class.txt", "".join(f"{c}\n" for c in ref.all_classes))
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["original", "manual"])
        writer.writerows(zip(table.names, table.phrases, strict=True))
        atomic_write_text(target / map_name, buffer.getvalue())
    copied = 0
    for path in sorted(Path(splits_dir).glob("stage_*")):
        if path.suffix in (".txt", ".csv") and path.is_file():
            atomic_write_text(target / split_name / path.name, path.read_text(encoding="utf-8"))
            copied += 1
    _logger.info("wrote %s (%d split files from %s)", target, copied, splits_dir)
    return target
