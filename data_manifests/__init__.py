"""avzsl.data_manifests: benchmark split files (data only) for UCF-GZSL, ActivityNet-GZSL and VGGSound-GZSL.

The files are package data (provenance in ``README.md`` beside this module). This module only locates and
reads them; split parsing is :mod:`avzsl.pipeline.data.splits`.

Dataset names are accepted case-insensitively, with a few aliases (``"UCF"``, ``"activity"``, ...).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import logging
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from avzsl.pipeline.core.errors import InvalidValueError
from avzsl.pipeline.data.splits import Splits, load_splits, read_class_list

if TYPE_CHECKING:
    import numpy as np

_logger = logging.getLogger(__name__)
_V = TypeVar("_V")

BENCHMARKS = ("ucf", "activitynet", "vggsound")
VARIANTS = ("main", "cls")

# dataset key -> (folder, name-map file)
_FOLDERS = {
    "ucf": ("UCF", "ucf_w2v_class_names.csv"),
    "activitynet": ("ActivityNet", "activitynet_w2v_class_names.csv"),
    "vggsound": ("VGGSound", "vggsound_w2v_class_names.csv"),
}
_ALIASES = {"ucf101": "ucf", "ucf-gzsl": "ucf", "activity": "activitynet", "activitynet-gzsl": "activitynet",
            "vggsound-gzsl": "vggsound"}


class CaseInsensitiveDict(dict[str, _V], Generic[_V]):
    """A ``dict`` keyed by the original spelling whose ``[]`` falls back to a case-insensitive match.

    ``d["HandStandPushups"]`` finds the key ``HandstandPushups``; iteration, ``in`` and ``get`` stay exact.
    """

    def __missing__(self, key: str) -> _V:
        lowered = key.lower() if isinstance(key, str) else key
        for k, v in self.items():
            if k.lower() == lowered:
                return v
        raise KeyError(f"unknown class name {key!r}")

    def lookup(self, key: str) -> _V:
        """Value for ``key`` compared case-insensitively (same as ``self[key]``)."""
        return self[key]


def dataset_key(name: str) -> str:
    """Canonical dataset key (one of :data:`BENCHMARKS`) for ``name``; unknown names raise ``ValueError``."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in BENCHMARKS:
        raise InvalidValueError(f"unknown benchmark {name!r}; expected one of {', '.join(BENCHMARKS)}")
    return key


@contextlib.contextmanager
def _data_dir(*parts: str) -> Iterator[Path]:
    # as_file: works for a zipped install too (extracts to a temporary folder for the duration).
    with resources.as_file(resources.files("avzsl.data_manifests").joinpath(*parts)) as path:
        yield Path(path)


def benchmark_splits(name: str, variant: str = "main") -> Splits:
    """The six stage splits of a benchmark.

    Args:
        name: ``ucf``, ``activitynet`` or ``vggsound`` (case-insensitive).
        variant: ``main`` (SeLaVi split, used by every SeLaVi-feature paper) or ``cls`` (C3D/VGGish split:
            a few test-unseen classes dropped; the video lists are main's, filter them with
            ``StageSplit.videos_of_listed_classes()``).
    """
    folder = _FOLDERS[dataset_key(name)][0]
    if variant not in VARIANTS:
        raise InvalidValueError(f"unknown split variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    with _data_dir(folder, f"{variant}_split") as class_dir, _data_dir(folder, "main_split") as video_dir:
        return load_splits(class_dir, video_dir)


def all_classes(name: str) -> list[str]:
    """All classes of the ORIGINAL dataset (UCF 101, ActivityNet 200, VGGSound 309), in file order."""
    return list(_all_classes(dataset_key(name)))


@functools.cache
def _all_classes(key: str) -> tuple[str, ...]:
    with _data_dir(_FOLDERS[key][0], "all_class.txt") as path:
        return read_class_list(path)


def label_codes(name: str) -> CaseInsensitiveDict[int]:
    """``class name -> label_code`` (index in ``sorted(all_class)``, Python's case-sensitive sort).

    This is the ``label_code`` column of the split csvs and the reference loader's class id. Use
    ``codes[name]`` with any case (``HandStandPushups`` gives ``HandstandPushups``'s code).
    """
    return CaseInsensitiveDict((cls, i) for i, cls in enumerate(sorted(all_classes(name))))


def class_phrases(name: str) -> CaseInsensitiveDict[str]:
    """``original class name -> manual phrase`` from ``<ds>_w2v_class_names.csv`` (the embedded phrase).

    ``phrases[name]`` matches ``name`` case-insensitively.
    """
    folder, file_name = _FOLDERS[dataset_key(name)]
    with _data_dir(folder, file_name) as path, path.open(newline="", encoding="utf-8") as f:
        return CaseInsensitiveDict((row["original"].strip(), row["manual"].strip()) for row in csv.DictReader(f))


def released_text_embeddings(name: str) -> dict[str, np.ndarray] | None:
    """The released class-name embeddings ``{manual phrase: (300,) float32}``, or ``None`` if none is shipped.

    Read from the safe ``text_embeddings/<ds>.npz`` conversion (no pickle); see ``README.md``.
    """
    import numpy as np  # here, not at the top: the CLIs read BENCHMARKS for their --help without loading numpy

    key = dataset_key(name)
    with _data_dir("text_embeddings", f"{key}.npz") as path:
        if not path.is_file():
            _logger.info("no released text embeddings shipped for %s", key)
            return None
        with np.load(path, allow_pickle=False) as data:
            names = [str(n) for n in data["names"]]
            vectors = np.asarray(data["vectors"], dtype=np.float32)
    return {n: vectors[i] for i, n in enumerate(names)}


__all__ = [
    "BENCHMARKS",
    "VARIANTS",
    "CaseInsensitiveDict",
    "all_classes",
    "benchmark_splits",
    "class_phrases",
    "dataset_key",
    "label_codes",
    "released_text_embeddings",
]
