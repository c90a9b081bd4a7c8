"""``avzsl-export clipclap``: write an avzsl cache in the ClipClap-GZSL layout, complete for its loader.

Writes, under ``OUT`` (ClipClap's ``--root_dir``): ``features/<method>/{audio,video}/<stage_split>/<Class>.pkl``
(``{"features": [(D,) float32], "video_names": [bytes], "fps": [25]}``, as its splitting script writes them),
the two text dicts ``features/<method>/text/{,wavcaps_}word_embeddings_<ds>_normed.npy`` from the class table's
CLIP-text and CLAP-text columns, and ``class-split/`` (``all_class.txt``, the name map, ``<split>/stage_*``).
The class table must record those two column slices (``segments``: a ``text_towers`` class table or a ClipClap
import). The ClipClap writer plugged into the shared export skeleton (``pipeline/interop/exporting.py``).
Layout and loader contract: ``pipeline/interop/clipclap/layout.py``; details: ``docs/clipclap_interop.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avzsl.pipeline.cache import CLASS_TABLE, ClassTable
from avzsl.pipeline.interop.clipclap.layout import (
    CUSTOM_MAP,
    DEFAULT_FEATURES,
    DEFAULT_FPS,
    DEFAULT_SPLIT,
    NAME_MAPS,
    PROCESSED_DIR,
    SPLITS_SUBDIR,
    TEXT_PARTS,
    ClipClapError,
    key_map,
    text_file_name,
    write_class_pickle,
)
from avzsl.pipeline.interop.common import write_text_dict
from avzsl.pipeline.interop.exporting import ExportResult, ExportSource, LayoutWriter, export_layout, open_export
from avzsl.pipeline.interop.reference import ReferenceText, reference_text

_logger = logging.getLogger(__name__)

_SEGMENT_OF = {"clip": "clip_text", "clap": "clap_text"}  # text part -> class-table segment name


@dataclass
class ClipClapExportReport(ExportResult):
    """What :func:`export_clipclap` did: an :class:`~avzsl.pipeline.interop.exporting.ExportResult` (``filled_zero``:
    classes absent from the cache, given zero vectors in both dicts) and ``text_files``, the two written text dicts,
    ``{"clip": path, "clap": path}``.
    """

    text_files: dict[str, Path] = field(default_factory=dict)


def text_columns(table: ClassTable, cache: Path) -> dict[str, slice]:
    """The CLIP-text and CLAP-text column slices of the class table (from its provenance ``segments``)."""
    segments = table.provenance.get("segments") or {}
    if not all(_SEGMENT_OF[p] in segments for p in TEXT_PARTS):
        raise ClipClapError(
            f"{Path(cache) / CLASS_TABLE}: the class table (embedder {table.provenance.get('embedder')!r}) does not "
            "record CLIP-text and CLAP-text columns; ClipClap needs both text embeddings of every class: extract "
            "with a clip_clap encoder and --class-embedder text_towers (the default for it)")
    out = {}
    for part in TEXT_PARTS:
        start, stop = (int(v) for v in segments[_SEGMENT_OF[part]])
        if not 0 <= start < stop <= table.embeddings.shape[1]:
            raise ClipClapError(f"{Path(cache) / CLASS_TABLE}: segment {_SEGMENT_OF[part]} = [{start}, {stop}) lies "
                                f"outside the {table.embeddings.shape[1]} embedding columns")
        out[part] = slice(start, stop)
    return out


def _text_dicts(table: ClassTable, columns: Mapping[str, slice], dataset: str | None, order: str,
                used: list[str]) -> dict[str, ReferenceText]:
    """Per text part, the dict the loader indexes by class id (keys: the dataset's map, else the table's phrases)."""
    mapping = key_map(dataset, None)[0] if dataset is not None else None
    out = {}
    for part in TEXT_PARTS:
        sub = ClassTable(table.names, table.phrases, table.embeddings[:, columns[part]], {})
        # fill_released=False: the shipped released vectors are fastText's, not CLIP/CLAP text.
        out[part] = reference_text(sub, dataset, order, used, phrase_map=mapping, fill_released=False)
    if list(out["clip"].text) != list(out["clap"].text):
        raise ClipClapError("the CLIP and CLAP text dicts would hold different keys")  # same names -> same keys
    return out


class ClipClapWriter(LayoutWriter):
    """ClipClap folders: per-class pickles and the CLIP-text and CLAP-text dicts from the class table's columns."""

    name = "clipclap"
    error = ClipClapError
    splits_subdir = SPLITS_SUBDIR

    def __init__(self) -> None:
        self.columns: dict[str, slice] = {}
        self.refs: dict[str, ReferenceText] = {}
        self.text_files: dict[str, Path] = {}
        self.dataset: str | None = None

    def check_table(self, table: ClassTable, cache: Path) -> None:
        """Refuse a class table without CLIP-text and CLAP-text columns (:func:`text_columns`)."""
        self.columns = text_columns(table, cache)

    def prepare(self, source: ExportSource) -> tuple[ReferenceText, str]:
        """The two text dicts the loader indexes by class id, and the name map's file name."""
        absent = [c for c in source.used if c.lower() not in {n.lower() for n in source.table.names}]
        if absent:
            raise ClipClapError(f"{source.splits_dir}: the split lists {len(absent)} class(es) the class table of "
                                f"{source.cache} lacks: {absent[:10]}")
        self.dataset = source.dataset
        self.refs = _text_dicts(source.table, self.columns, source.dataset, source.text_order, source.used)
        ref = self.refs["clip"]
        if ref.filled_zero:
            _logger.warning("%d of %d classes are not in the cache and get zero vectors in both text dicts%s",
                            len(ref.filled_zero), len(ref.all_classes),
                            f"; {len(ref.zero_used)} classes of the split read such a row in the loader's "
                            "class-id-indexed table (use --text-order by_class_id)" if ref.zero_used else "")
        # all_class.txt and the name map: the benchmark's files, else built from the class table (original, manual).
        return ref, NAME_MAPS[source.dataset][0] if source.dataset is not None else CUSTOM_MAP[0]

    def owned(self, features: str) -> tuple[str, ...]:
        """The loader's own parse of the features (``_features_processed/<features>``): stale after a re-export."""
        return (f"{PROCESSED_DIR}/{features}",)

    def write_class(self, stage_dirs: tuple[Path, Path], class_name: str, names: list[str], audio: np.ndarray,
                    visual: np.ndarray) -> None:
        """``<stage>/<Class>.pkl`` for audio and video, as ClipClap's splitting script writes them (fps 25)."""
        fps = [DEFAULT_FPS] * len(names)
        for stage_dir, data in zip(stage_dirs, (audio, visual), strict=True):
            write_class_pickle(stage_dir / f"{class_name}.pkl", data, names, fps)

    def write_text(self, feature_dir: Path, out_dir: Path) -> dict[str, Any]:
        """The CLIP and WavCaps/CLAP text dicts, as ClipClap reads them (``np.load(allow_pickle=True).item()``)."""
        for part in TEXT_PARTS:
            path = feature_dir / "text" / text_file_name(part, self.dataset)
            write_text_dict(path, self.refs[part].text)
            self.text_files[part] = path
        return {"text_files": {p: f.relative_to(out_dir).as_posix() for p, f in self.text_files.items()},
                "text_columns": {p: [c.start, c.stop] for p, c in self.columns.items()}}


def export_clipclap(
    cache: Path,
    out_dir: Path,
    splits_dir: Path | None = None,
    features: str = DEFAULT_FEATURES,
    dataset: str | None = None,
    split_name: str = DEFAULT_SPLIT,
    text_order: str = "by_phrase",
    overwrite: bool = False,
) -> ClipClapExportReport:
    """Export an avzsl cache (per-video features + CLIP/CLAP text class table) to the ClipClap layout.

    Args:
        cache: avzsl feature cache.
        out_dir: dataset folder to write; must be empty unless ``overwrite`` (which replaces only
            ``features/<features>``, ``class-split``, ``_features_processed/<features>`` and the export record).
        splits_dir: reference-format split folder (``stage_*.txt`` + ``stage_*.csv``); default
            ``cache/splits/clipclap`` (written by :func:`~avzsl.pipeline.interop.clipclap.importer.import_clipclap`).
        features: feature method folder name (ClipClap's ``feature_extraction_method``).
        dataset: ``ucf``/``activitynet``/``vggsound``: the loader's file names, the benchmark's ``all_class.txt``
            and name map, and text dicts over its full class list (classes absent from the cache get zero
            vectors, reported). ``None``: ``custom`` names and the cache's classes only.
        split_name: folder under ``class-split/`` (ClipClap's ``zero_shot_split``).
        text_order: ``by_phrase`` (each key its own class's vectors) or ``by_class_id`` (vectors permuted so the
            loader's positional lookup gives each class its own); see ``pipeline/interop/reference.py``.
        overwrite: allow a non-empty ``out_dir``.

    Returns:
        A :class:`ClipClapExportReport`.
    """
    writer = ClipClapWriter()
    source = open_export(writer, cache, splits_dir, features, dataset, split_name, text_order)
    result = export_layout(writer, source, out_dir, overwrite)
    return ClipClapExportReport(**vars(result), text_files=writer.text_files)
