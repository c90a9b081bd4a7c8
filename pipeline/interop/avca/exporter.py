"""``avzsl-export avca``: write an avzsl cache in the AVCA layout, complete enough for the reference code.

Besides ``features/<method>/{audio,video,text}`` this writes the ``class-split/`` folder the reference loader
(ExplainableML/AVCA-GZSL, ``src/dataset.py``) opens, and a text-embedding dict covering the benchmark's full class
list (``pipeline/interop/reference.py``). The AVCA writer plugged into the shared export skeleton
(``pipeline/interop/exporting.py``). Layout: ``pipeline/interop/avca/layout.py``; details: ``docs/avca_interop.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avzsl.pipeline.cache import write_h5
from avzsl.pipeline.core.atomic import atomic_write
from avzsl.pipeline.interop.avca.layout import REFERENCE_TEXT_FILES, S80, SPLITS_SUBDIR, AvcaError
from avzsl.pipeline.interop.common import write_text_dict
from avzsl.pipeline.interop.exporting import ExportResult, ExportSource, LayoutWriter, export_layout, open_export
from avzsl.pipeline.interop.reference import ReferenceText, name_map_file, reference_text

_logger = logging.getLogger(__name__)


@dataclass
class ExportReport(ExportResult):
    """What :func:`export_avca` did: an :class:`~avzsl.pipeline.interop.exporting.ExportResult` plus these.

    Attributes:
        text_file: the written embedding dict.
        url_dtype: ``S80`` or ``vlen`` (see :func:`_url_dataset_dtype`).
        filled_released: classes absent from the cache given the released embedding (``filled_zero``: a zero one).
    """

    text_file: Path | None = None
    url_dtype: str = "S80"
    filled_released: list[str] = field(default_factory=list)


def _url_dataset_dtype(urls: Sequence[str]) -> tuple[Any, str]:
    """The reference's ``S80`` when every name is ASCII and fits, else variable-length UTF-8 (never truncate)."""
    if all(u.isascii() and len(u) <= S80 for u in urls):
        return f"S{S80}", "S80"
    return h5py.string_dtype(encoding="utf-8"), "vlen"


def _write_class_file(path: Path, data: np.ndarray, urls: Sequence[str], url_dtype: Any) -> None:
    def write(tmp: Path) -> None:
        with write_h5(tmp) as f:
            f.create_dataset("data", data=np.asarray(data, dtype=np.float32))
            encoded = [u.encode("utf-8") for u in urls]
            if isinstance(url_dtype, str):
                f.create_dataset("video_urls", data=np.array(encoded, dtype=url_dtype), dtype=url_dtype)
            else:
                f.create_dataset("video_urls", data=np.array(list(urls), dtype=object), dtype=url_dtype)

    atomic_write(path, write)


class AvcaWriter(LayoutWriter):
    """AVCA folders: per-class ``.h5`` files and one ``text/<name>.npy`` dict (``text_file``: its name, or ``None``
    for the dataset's reference name, else the imported file's name, else ``word_embeddings_normed.npy``)."""

    name = "avca"
    error = AvcaError
    splits_subdir = SPLITS_SUBDIR

    def __init__(self, text_file: str | None) -> None:
        self.text_file = text_file
        self.text_path: Path | None = None
        self.ref: ReferenceText | None = None
        self.url_kinds: set[str] = set()

    def prepare(self, source: ExportSource) -> tuple[ReferenceText, str]:
        """The embedding dict over the benchmark's full class list (with ``dataset``), and its name map's name."""
        if self.text_file is None:
            imported = source.info.get("avca_import", {}).get("text_file")
            if source.dataset is not None:
                self.text_file = REFERENCE_TEXT_FILES[source.dataset]
            elif imported:
                self.text_file = Path(imported).name
            else:
                self.text_file = "word_embeddings_normed.npy"
        if Path(self.text_file).name != self.text_file or not self.text_file.endswith(".npy"):
            raise AvcaError(f"{self.text_file!r}: the embedding file must be a plain *.npy file name")
        ref = reference_text(source.table, source.dataset, source.text_order, source.used)
        if ref.filled_zero:
            _logger.warning("%d of %d classes have no known embedding and get a zero vector in the text dict%s",
                            len(ref.filled_zero), len(ref.all_classes),
                            f"; {len(ref.zero_used)} classes of the split read such a row in the reference's "
                            f"class-id-indexed table (use --text-order by_class_id)" if ref.zero_used else "")
        if ref.filled_released:
            _logger.info("%d classes absent from the cache get their released embedding", len(ref.filled_released))
        self.ref = ref
        return ref, name_map_file(source.dataset, self.text_file)

    def write_class(self, stage_dirs: tuple[Path, Path], class_name: str, names: list[str], audio: np.ndarray,
                    visual: np.ndarray) -> None:
        """``<stage>/<Class>.h5`` for audio and video: ``data`` and the filenames as ``video_urls``."""
        url_dtype, kind = _url_dataset_dtype(names)
        self.url_kinds.add(kind)
        for stage_dir, data in zip(stage_dirs, (audio, visual), strict=True):
            _write_class_file(stage_dir / f"{class_name}.h5", data, names, url_dtype)

    def write_text(self, feature_dir: Path, out_dir: Path) -> dict[str, Any]:
        """The embedding dict, as the reference reads it (``np.load(allow_pickle=True).item()``)."""
        assert self.ref is not None and self.text_file is not None  # set by prepare, which export_layout calls first
        self.text_path = feature_dir / "text" / self.text_file
        write_text_dict(self.text_path, self.ref.text)
        return {"text_file": self.text_path.relative_to(out_dir).as_posix(),
                "filled_released": self.ref.filled_released}


def export_avca(
    cache: Path,
    out_dir: Path,
    splits_dir: Path | None = None,
    features: str = "main_features",
    *,
    dataset: str | None = None,
    text_file: str | None = None,
    split_name: str = "main_split",
    text_order: str = "by_phrase",
    overwrite: bool = False,
) -> ExportReport:
    """Write an avzsl cache in the AVCA layout (see module docstring).

    Per stage split and class (the split's class list, spelled as there), ``audio``/``video`` ``.h5`` files with
    ``data`` ``(n, D)`` float32 and ``video_urls`` = the split's filenames (fixed ``S80`` bytes as in the reference
    release; variable-length UTF-8 only when a name is longer or not ASCII). Rows of classes not in a stage's class
    list are skipped (``cls`` variant), as the reference does. Split rows are matched to cache ids with
    :func:`~avzsl.pipeline.data.splits.match_videos`; unmatched rows are logged and reported, ambiguous ones are errors.
    The class table becomes ``text/<name>.npy``, ``np.save`` of ``{phrase: (D,) float32}``, covering the
    benchmark's full class list when ``dataset`` is given (classes absent from the cache get the released
    embedding when the cache carries the released ones, else a zero vector, both reported), and ``class-split/``
    holds ``all_class.txt``, the name map and ``<split_name>/stage_*`` (``pipeline/interop/reference.py``).

    Args:
        cache: avzsl cache directory.
        out_dir: AVCA dataset folder to write (``out_dir/features/<features>/``); must be empty unless ``overwrite``
            (which replaces only ``features/<features>``).
        splits_dir: reference-format split folder; default ``cache/splits/avca`` (written by :func:`import_avca`).
        features: feature method folder name.
        dataset: selects the reference embedding file name (``word_embeddings_<ds>_normed.npy``).
        text_file: embedding file name; default: the dataset's reference name when ``dataset`` is given, else the
            imported file's name, else ``word_embeddings_normed.npy``.
        split_name: folder under ``class-split/`` for the split files (the reference's ``--zero_shot_split``).
        text_order: ``by_phrase`` (as released) or ``by_class_id`` (the reference's positional lookup then finds
            each class's own embedding); see ``pipeline/interop/reference.py``.
        overwrite: allow a non-empty ``out_dir`` (replaces ``features/<features>``, ``class-split`` and
            ``avzsl_export.json``).
    """
    writer = AvcaWriter(text_file)
    source = open_export(writer, cache, splits_dir, features, dataset, split_name, text_order)
    result = export_layout(writer, source, out_dir, overwrite)
    assert writer.ref is not None  # set by export_layout (prepare)
    return ExportReport(**vars(result), text_file=writer.text_path,
                        url_dtype="vlen" if "vlen" in writer.url_kinds else "S80",
                        filled_released=writer.ref.filled_released)
