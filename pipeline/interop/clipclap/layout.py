"""The ClipClap-GZSL feature layout (dkurzend/ClipClap-GZSL): reading and writing its files without pickle execution.

Layout (``ROOT`` = one dataset folder, the code's ``--root_dir``; read by its ``src/dataset.py``)::

    ROOT/class-split/all_class.txt, <name map>, <split>/stage_*.txt        (split: cls_split in its config)
        name map: UCF ``ucf_clip_class_names.csv`` (original,manual,clip_class_name; dict keys = clip_class_name),
        ActivityNet / VGGSound ``<ds>_w2v_class_names.csv`` (original,manual; dict keys = manual)
    ROOT/features/<method>/{audio,video}/<stage_split>/<ClassName>.pkl      (method: cls_features_non_averaged)
        pickle.dump of {"features": [(D,) float32 per video], "video_names": [bytes per video], "fps": [int]}
        video: CLIP ViT-B/32 image embedding of the middle frame, L2-normalised, D = 512;
        audio: WavCaps HTSAT-BERT (CLAP) audio embedding of the whole clip at 32 kHz, D = 1024
    ROOT/features/<method>/text/word_embeddings_<ds>_normed.npy             CLIP text tower, {key: (512,)}
    ROOT/features/<method>/text/wavcaps_word_embeddings_<ds>_normed.npy     WavCaps text tower, {key: (1024,)}

with ``<ds>`` = ``ucf``, ``activitynet``, ``vggsound``. The loader concatenates the two text dicts row by row in
key-sorted order (``[clip, wavcaps]``, 1536-d) and indexes the table by class id (``sorted(all_class)``), as the
AVCA loader does. Per-class files are unpickled with :mod:`avzsl.pipeline.core.safe_pickle` (numpy arrays, lists,
bytes and numbers only).

What else the loader (``UCFDataset`` / ``ActivityNetDataset`` / ``VGGSoundDataset`` in ``src/dataset.py``,
``read_features`` and ``get_class_names`` in ``src/utils.py``) relies on, and the import/export keep:

* it opens EVERY entry of a ``<modality>/<stage_split>`` folder (``iterdir``), unpickles it and takes the class
  from the file stem (``class_to_idx[stem.lower()]``; exact case for VGGSound), so a stray file breaks it;
* audio and video are read in directory order and must agree row for row (it asserts equal targets and urls);
  the urls are ``str(name)`` of the stored bytes, i.e. ``"b'v_Archery_g01_c01'"``;
* class ids are positions in ``sorted(all_class.txt)``; the stage class lists are
  ``class-split/<zero_shot_split>/stage_*.txt``;
* text: keys sorted, the CLIP and WavCaps vectors of the same position concatenated, the table indexed by class
  id, so both dicts need one entry per class of ``all_class.txt`` and the same keys;
* on first use it writes ``ROOT/_features_processed/<method>/{training,val,train_val,test}<split>.pkl`` and
  later reads only those, so a re-export into the same folder must remove them (the export does).
"""

from __future__ import annotations

import csv
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avzsl.pipeline.core.atomic import atomic_write
from avzsl.pipeline.core.safe_pickle import ForbiddenPickleError, as_float_vector, restricted_load_file
from avzsl.pipeline.interop.common import InteropError, match_text_keys
from avzsl.pipeline.interop.reference import manifest_text

DEFAULT_FEATURES = "cls_features_non_averaged"  # config/clipclap.yaml feature_extraction_method
DEFAULT_SPLIT = "cls_split"  # config/clipclap.yaml zero_shot_split
TEXT_PARTS = ("clip", "clap")  # order of the concatenated class embedding
TEXT_FILES = {"clip": "word_embeddings_{ds}_normed.npy", "clap": "wavcaps_word_embeddings_{ds}_normed.npy"}
DEFAULT_FPS = 25  # what ClipClap's splitting script stores for every video
NAME_MAPS = {  # benchmark -> (name-map file, column holding the dict key)
    "ucf": ("ucf_clip_class_names.csv", "clip_class_name"),
    "activitynet": ("activitynet_w2v_class_names.csv", "manual"),
    "vggsound": ("vggsound_w2v_class_names.csv", "manual"),
}
SPLITS_SUBDIR = Path("splits") / "clipclap"  # split folder an import writes inside the cache
PROCESSED_DIR = "_features_processed"  # the loader's own cache of parsed features, under ROOT
CUSTOM_MAP = ("custom_w2v_class_names.csv", "manual")  # name map written for a cache that is no benchmark


class ClipClapError(InteropError):
    """The ClipClap folder (or the cache to export) is malformed; the message names the file(s)."""


def text_file_name(part: str, dataset: str | None) -> str:
    """File name of one text dict (``custom`` stands for the dataset when none is given)."""
    return TEXT_FILES[part].format(ds=dataset or "custom")


def _decode_name(value: Any, path: Path) -> str:
    if isinstance(value, bytes | np.bytes_):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ClipClapError(f"{path}: video name {bytes(value)!r} is not UTF-8") from exc
    if isinstance(value, str):
        return str(value)
    raise ClipClapError(f"{path}: video names must be bytes or str, found {type(value).__name__}")


def read_class_pickle(path: Path) -> tuple[np.ndarray, list[str], list[int]]:
    """Read one per-class file without executing pickled code.

    Returns:
        ``features`` ``(n, D)`` float32, the ``n`` video names and their ``fps`` values.

    Raises:
        ForbiddenPickleError: the file names a global outside numpy's array globals.
        ClipClapError: the structure is not ``{"features", "video_names"[, "fps"]}`` with one row per name.
    """
    path = Path(path)
    try:
        obj = restricted_load_file(path)
    except OSError as exc:
        raise ClipClapError(f"{path}: cannot read ({exc})") from exc
    if not isinstance(obj, dict) or "features" not in obj or "video_names" not in obj:
        keys = sorted(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
        raise ClipClapError(f"{path}: expected a dict with 'features' and 'video_names', found {keys}")
    raw, names = obj["features"], [_decode_name(u, path) for u in obj["video_names"]]
    if isinstance(raw, np.ndarray) and raw.ndim == 2:
        raw = list(raw)
    if not isinstance(raw, list | tuple):
        raise ClipClapError(f"{path}: 'features' must be a list of per-video vectors, found {type(raw).__name__}")
    rows = []
    for i, value in enumerate(raw):
        if isinstance(value, np.ndarray) and value.ndim > 1:
            raise ClipClapError(f"{path}: video {i} has features of shape {value.shape}; per-second sequences are "
                                "not supported by this import (one vector per video)")
        rows.append(as_float_vector(value, f"{path}: video {i}"))
    if len(rows) != len(names):
        # ClipClap's splitting script drops a video with empty features but keeps its name, shifting every later
        # row onto another video's name; importing that would mislabel silently.
        raise ClipClapError(f"{path}: {len(rows)} feature rows but {len(names)} video names (rows and names must "
                            "correspond one to one)")
    dims = {r.shape[0] for r in rows}
    if len(dims) > 1:
        raise ClipClapError(f"{path}: feature vectors differ in length: {sorted(dims)}")
    fps = obj.get("fps", [DEFAULT_FPS] * len(rows))
    if not isinstance(fps, list | tuple) or len(fps) != len(rows):
        raise ClipClapError(f"{path}: 'fps' must list one value per video")
    data = np.stack(rows) if rows else np.zeros((0, 0), np.float32)
    return data, names, [int(f) for f in fps]


def write_class_pickle(path: Path, data: np.ndarray, names: Sequence[str], fps: Sequence[int]) -> None:
    """Write one per-class file as ClipClap's splitting script does (atomically)."""
    payload = {
        "features": [np.asarray(row, dtype=np.float32) for row in data],
        "video_names": [n.encode("utf-8") for n in names],
        "fps": [int(f) for f in fps],
    }

    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:
            pickle.dump(payload, f, protocol=4)  # writing a pickle runs nothing; ClipClap reads exactly this

    atomic_write(Path(path), write)


def read_name_map(path: Path, column: str) -> dict[str, str]:
    """``original class name (lower) -> dict key`` from a name-map csv."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or "original" not in reader.fieldnames or column not in reader.fieldnames:
            raise ClipClapError(f"{path}: needs columns 'original' and {column!r}, has {reader.fieldnames}")
        return {row["original"].strip().lower(): row[column].strip() for row in reader}


def key_map(dataset: str | None, root: Path | None) -> tuple[dict[str, str] | None, str]:
    """``class name (lower) -> text dict key`` and where it came from (``None``: match normalised names)."""
    if dataset is not None:
        name, column = NAME_MAPS[dataset]
        rows = csv.DictReader(manifest_text(dataset, name).splitlines())
        return {r["original"].strip().lower(): r[column].strip() for r in rows}, f"avzsl.data_manifests/{name}"
    if root is not None:
        for pattern, column in (("*_clip_class_names.csv", "clip_class_name"), ("*_w2v_class_names.csv", "manual")):
            found = sorted((Path(root) / "class-split").glob(pattern))
            if len(found) == 1:
                return read_name_map(found[0], column), str(found[0])
    return None, "normalised names"


def class_keys(classes: Sequence[str], text: Mapping[str, np.ndarray], mapping: Mapping[str, str] | None,
               source: str, what: Path) -> list[str]:
    """The dict key of each class: through ``mapping`` when it has one, else the unique normalised-name match."""
    matched, unmatched = match_text_keys(classes, text, mapping)
    if unmatched:
        raise ClipClapError(f"{what}: no embedding found (using {source}) for {len(unmatched)} class(es): "
                            f"{unmatched[:10]}; give the dataset (--dataset) so its class-name map is used")
    return [matched[name] for name in classes]


def check_text_dims(text: Mapping[str, Mapping[str, np.ndarray]], files: Mapping[str, Path]) -> dict[str, int]:
    """Per part, the vector length (all keys of a part share it; the parts must hold the same keys)."""
    dims = {part: next(iter(t.values())).shape[0] for part, t in text.items()}
    parts = list(text)
    if len(parts) == 2 and set(text[parts[0]]) != set(text[parts[1]]):
        only = sorted(set(text[parts[0]]) ^ set(text[parts[1]]))
        raise ClipClapError(f"{files[parts[0]]} and {files[parts[1]]} hold different class keys (the loader "
                            f"concatenates them row by row): {only[:10]}")
    return dims


__all__ = [
    "CUSTOM_MAP",
    "DEFAULT_FEATURES",
    "DEFAULT_SPLIT",
    "NAME_MAPS",
    "PROCESSED_DIR",
    "SPLITS_SUBDIR",
    "TEXT_PARTS",
    "ClipClapError",
    "ForbiddenPickleError",
    "check_text_dims",
    "class_keys",
    "key_map",
    "manifest_text",
    "read_class_pickle",
    "text_file_name",
    "write_class_pickle",
]
