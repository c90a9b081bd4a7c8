"""The AVCA feature layout (avgzsl_conventions.md section 2): its files, read and mapped for import and export.

Layout (``ROOT`` = one dataset folder of ``avgzsl_benchmark_datasets/``, e.g. ``.../UCF``)::

    ROOT/class-split/all_class.txt, <ds>_w2v_class_names.csv, <split>/stage_*.{txt,csv}
    ROOT/features/<features>/{audio,video}/<stage_split>/<ClassName>.h5
        data        (n_videos_of_class, D) float32
        video_urls  (n_videos_of_class,) ASCII bytes (fixed S80 or variable length), row-aligned between the
                    audio and the video file of a class
    ROOT/features/<features>/text/word_embeddings_<ds>_normed.npy
        np.save of a Python dict {manual phrase: (300,) float32}: a PICKLE, read with the restricted unpickler of
        ``pipeline/core/safe_pickle.py`` (no code from the file runs).

This module: the AVCA constants, per-class file reading, the text dict and its class-embedding mapping, used by
``importer.py`` and ``exporter.py``; what every layout shares (errors, markers, output folders) is
``pipeline/interop/common.py``. Details: ``docs/avca_interop.md``.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avzsl.data_manifests import all_classes, class_phrases
from avzsl.pipeline.core.errors import InvalidValueError
from avzsl.pipeline.core.safe_pickle import load_text_embedding_dict
from avzsl.pipeline.data.splits import read_class_list
from avzsl.pipeline.interop.common import EMBEDDING_ORDERS, InteropError, match_text_keys, reference_class_keys

MODALITIES = {"audio": "audio", "video": "visual"}  # AVCA folder -> avzsl feature name
# File names the reference loader (ExplainableML/AVCA-GZSL, src/dataset.py) opens, per dataset.
REFERENCE_TEXT_FILES = {
    "ucf": "word_embeddings_ucf_normed.npy",
    "activitynet": "word_embeddings_activity_normed.npy",
    "vggsound": "word_embeddings_vggsound_normed.npy",
}
SPLITS_SUBDIR = Path("splits") / "avca"
S80 = 80  # width of the reference's fixed-length video_urls (AVCA README: dtype="S80")
# The AVCA code's name for the interop error; an alias, so `except AvcaError` keeps catching what it caught.
AvcaError = InteropError


def _decode(value: Any) -> str:
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8")
    return str(value)


def read_class_file(path: Path) -> tuple[np.ndarray, list[str]]:
    """Read one AVCA per-class file.

    Returns:
        ``data`` ``(n, D)`` float32 and the ``n`` video names of ``video_urls``.
    """
    try:
        with h5py.File(path, "r") as f:
            if "data" not in f or "video_urls" not in f:
                raise AvcaError(f"{path}: needs datasets 'data' and 'video_urls', has {sorted(f.keys())}")
            data = np.asarray(f["data"][...], dtype=np.float32)
            urls = [_decode(u) for u in f["video_urls"][...]]
    except OSError as exc:
        raise AvcaError(f"{path}: not a readable HDF5 file ({exc})") from exc
    if data.ndim != 2 and not (data.ndim == 1 and data.shape[0] == 0):
        raise AvcaError(f"{path}: 'data' must be (n_videos, D), is {data.shape}")
    if data.shape[0] != len(urls):
        raise AvcaError(f"{path}: {data.shape[0]} feature rows but {len(urls)} video_urls")
    return data.reshape(len(urls), -1) if data.ndim == 1 else data, urls


def load_text_dict(path: Path) -> dict[str, np.ndarray]:
    """Load a released embedding dict (``np.save`` of ``{phrase: (D,) float32}``) WITHOUT executing pickled code.

    The file is a pickle; it is read by :func:`avzsl.pipeline.core.safe_pickle.load_text_embedding_dict`, which admits
    only the numpy globals that array pickles need and refuses any other with an error naming the file and the
    global.
    """
    try:
        return load_text_embedding_dict(path)
    except OSError as exc:
        raise AvcaError(f"{path}: cannot read the embedding dict ({exc})") from exc


def _name_map(dataset: str | None, root: Path | None) -> tuple[dict[str, str] | None, str]:
    """``original class name (lower) -> dict key`` and where it came from; ``None`` = match normalised names."""
    if dataset is not None:
        return {k.lower(): v for k, v in class_phrases(dataset).items()}, f"avzsl.data_manifests ({dataset})"
    if root is not None and (root / "class-split").is_dir():
        found = sorted((root / "class-split").glob("*_w2v_class_names.csv"))
        if len(found) == 1:
            with found[0].open(newline="", encoding="utf-8") as f:
                rows = {r["original"].strip().lower(): r["manual"].strip() for r in csv.DictReader(f)}
            return rows, str(found[0])
    return None, "normalised names"


def _all_class_names(dataset: str | None, root: Path | None) -> list[str]:
    if dataset is not None:
        return all_classes(dataset)
    if root is not None and (root / "class-split" / "all_class.txt").is_file():
        return list(read_class_list(root / "class-split" / "all_class.txt"))
    raise AvcaError("the reference embedding order needs the dataset's all_class.txt: give the dataset "
                    "(--dataset) or keep class-split/all_class.txt in the AVCA folder")


def map_class_embeddings(
    class_names: Sequence[str],
    text: Mapping[str, np.ndarray],
    dataset: str | None = None,
    order: str = "by_name",
    root: Path | None = None,
    all_class_names: Sequence[str] | None = None,
) -> tuple[list[str], np.ndarray, list[str]]:
    """Choose the embedding of each class.

    ``by_name`` (correct): the class name is mapped to its phrase through the dataset's ``w2v_class_names`` map
    (``dataset`` given, or ``ROOT/class-split/*_w2v_class_names.csv``), else matched to a dict key with the same
    normalised name (lower-case, spaces/underscores removed).

    ``reference``: what ``ExplainableML/AVCA-GZSL, src/dataset.py`` does
    (:func:`~avzsl.pipeline.interop.common.reference_class_keys`). It builds the text table as
    ``list(dict(sorted(text.items())).values())`` (sorted by phrase) and indexes it with the class id
    ``sorted(all_class).index(name)`` (sorted by ORIGINAL name), so class id ``k`` receives the ``k``-th phrase in
    phrase order, which is another class's wherever the two sort orders differ.

    Args:
        class_names: classes to look up (any case).
        text: ``{phrase: (D,) float32}``.
        dataset: benchmark key, for the name map and the class list.
        order: ``by_name`` or ``reference``.
        root: AVCA dataset folder (fallback source of the name map and ``all_class.txt``).
        all_class_names: class list defining the reference class ids (default: dataset's / root's).

    Returns:
        ``(phrases, embeddings (C, D) float32, reassigned)``: the dict key used per class, its vector, and the
        classes whose key is not their own phrase (empty for ``by_name``).
    """
    if order not in EMBEDDING_ORDERS:
        raise InvalidValueError(f"unknown embedding order {order!r}; expected one of {', '.join(EMBEDDING_ORDERS)}")
    name_map, source = _name_map(dataset, root)
    correct, unmatched = match_text_keys(class_names, text, name_map)
    if order == "by_name":
        if unmatched:
            raise AvcaError(f"no embedding found by name (using {source}) for {len(unmatched)} class(es): "
                            f"{unmatched[:10]}; give the dataset (--dataset) so its class-name map is used")
        phrases = [correct[n] for n in class_names]
        return phrases, np.stack([text[p] for p in phrases]).astype(np.float32), []
    phrases = reference_class_keys(class_names, text, all_class_names or _all_class_names(dataset, root), AvcaError)
    reassigned = [n for n, p in zip(class_names, phrases, strict=True) if correct.get(n) != p]
    return phrases, np.stack([text[p] for p in phrases]).astype(np.float32), reassigned


def find_text_file(text_dir: Path, dataset: str | None) -> Path:
    """The embedding dict of ``text_dir``: the name the reference opens for ``dataset``, else the one ``*.npy``."""
    if not text_dir.is_dir():
        raise AvcaError(f"{text_dir}: text embedding folder not found")
    if dataset is not None and (text_dir / REFERENCE_TEXT_FILES[dataset]).is_file():
        return text_dir / REFERENCE_TEXT_FILES[dataset]
    found = sorted(text_dir.glob("*.npy"))
    if len(found) != 1:
        raise AvcaError(f"{text_dir}: expected one .npy embedding dict, found {[p.name for p in found]}"
                        + ("" if dataset else "; give the dataset (--dataset) to pick the reference file name"))
    return found[0]

