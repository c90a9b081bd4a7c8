"""The export skeleton every released layout shares: reading the cache and split folder, the stage loop, the record.

A layout is a :class:`LayoutWriter` (its text dict(s), how one class's audio and video rows are written, which file
names it uses). :func:`open_export` reads what an export needs from the cache; :func:`export_layout` then writes, under
the output folder's lock (:func:`~avzsl.pipeline.interop.common.writing_output`), every class of every stage split
(rows matched by :func:`~avzsl.pipeline.interop.common.stage_class_rows`), the text dict(s), ``class-split/`` as the
reference loaders open it (:func:`~avzsl.pipeline.interop.reference.write_class_split`) and the export record
``avzsl_export.json``.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from avzsl.data_manifests import dataset_key
from avzsl.pipeline.cache import ClassTable, load_features, read_cache_info, read_class_table
from avzsl.pipeline.core.atomic import atomic_write_text
from avzsl.pipeline.core.errors import InvalidValueError
from avzsl.pipeline.core.faults import crash_point
from avzsl.pipeline.core.version import package_version
from avzsl.pipeline.data.splits import STAGE_SPLITS, Splits
from avzsl.pipeline.interop.common import (
    EXPORT_MARKER,
    EXPORT_RECORD,
    InteropError,
    check_folder_name,
    load_export_splits,
    stage_class_rows,
    writing_output,
)
from avzsl.pipeline.interop.reference import TEXT_ORDERS, ReferenceText, write_class_split

_logger = logging.getLogger(__name__)


@dataclass
class ExportSource:
    """What an export reads from the cache, and the choices every layout shares (:func:`open_export`).

    Attributes:
        cache: the cache directory.
        features: feature method folder name written under ``OUT/features``.
        dataset: benchmark key or ``None``.
        split_name: folder under ``OUT/class-split`` for the split files.
        text_order: ``by_phrase`` or ``by_class_id`` (``interop/reference.py``).
        info: the cache's ``cache.json``.
        splits_dir: the split folder read; ``splits``: its stage splits.
        table: the cache's class table.
        video_ids: cache video ids, row order of ``audio`` ``(N, D_A)`` and ``visual`` ``(N, D_V)`` float32.
        used: the classes the split folder lists, sorted case-insensitively.
    """

    cache: Path
    features: str
    dataset: str | None
    split_name: str
    text_order: str
    info: dict[str, Any]
    splits_dir: Path
    splits: Splits
    table: ClassTable
    video_ids: list[str]
    audio: np.ndarray
    visual: np.ndarray
    used: list[str]


@dataclass
class ExportResult:
    """What :func:`export_layout` did.

    Attributes:
        out_dir: the dataset folder written (``out_dir/features/<features>/...``).
        stage_videos: videos written per stage split.
        missing: per stage split, split filenames with no video in the cache (not written).
        class_split: the written ``class-split`` folder.
        text_order: ``by_phrase`` or ``by_class_id``.
        text_classes: entries of the written text dict(s) (the benchmark's full class list with ``dataset``).
        filled_zero: classes absent from the cache, given a zero vector.
        zero_used: split classes whose row in the loader's class-id-indexed table is a zero vector.
    """

    out_dir: Path
    stage_videos: dict[str, int]
    missing: dict[str, list[str]] = field(default_factory=dict)
    class_split: Path | None = None
    text_order: str = "by_phrase"
    text_classes: int = 0
    filled_zero: list[str] = field(default_factory=list)
    zero_used: list[str] = field(default_factory=list)


class LayoutWriter(ABC):
    """One released layout's files, written by :func:`export_layout`.

    Class attributes: ``name`` (crash points ``<name>-export-<stage>``), ``error`` (raised for a cache or split
    folder the layout cannot hold) and ``splits_subdir`` (the split folder an import of the layout wrote inside the
    cache, the default ``--splits``).
    """

    name: ClassVar[str]
    error: ClassVar[type[InteropError]]
    splits_subdir: ClassVar[Path]

    def check_table(self, table: ClassTable, cache: Path) -> None:  # noqa: B027 (a hook: nothing to check by default)
        """Refuse a class table the layout cannot write, before the features are loaded (nothing by default)."""

    @abstractmethod
    def prepare(self, source: ExportSource) -> tuple[ReferenceText, str]:
        """Build the text dict(s), logging what had to be filled in.

        Returns:
            The dict ``class-split/`` is written from, and the name-map file name.
        """

    def owned(self, features: str) -> tuple[str, ...]:
        """Entries of the output folder the layout writes besides ``features/<features>``, ``class-split`` and the
        export record (``--overwrite`` replaces them)."""
        return ()

    @abstractmethod
    def write_class(self, stage_dirs: tuple[Path, Path], class_name: str, names: list[str], audio: np.ndarray,
                    visual: np.ndarray) -> None:
        """Write one class of a stage split: audio ``(n, D_A)`` and visual ``(n, D_V)`` rows of the ``n`` split
        filenames ``names``, into the stage's audio and video folders ``stage_dirs``."""

    @abstractmethod
    def write_text(self, feature_dir: Path, out_dir: Path) -> dict[str, Any]:
        """Write the text dict(s) under ``feature_dir/text``; returns the export-record entries naming them."""


def open_export(writer: LayoutWriter, cache: Path, splits_dir: Path | None, features: str, dataset: str | None,
                split_name: str, text_order: str) -> ExportSource:
    """Check an export's arguments and read the cache, its class table and the split folder.

    Raises ``ValueError`` for an unknown text order, ``writer.error`` for a name that is not a plain folder name.
    """
    cache = Path(cache)
    if dataset is not None:
        dataset = dataset_key(dataset)
    if text_order not in TEXT_ORDERS:
        raise InvalidValueError(f"unknown text order {text_order!r}; expected one of {', '.join(TEXT_ORDERS)}")
    for value, what in ((features, "feature method"), (split_name, "split folder")):
        check_folder_name(value, what, writer.error)
    info = read_cache_info(cache)  # refuses a folder that is no cache, naming cache.json
    splits_dir, splits = load_export_splits(cache, splits_dir, writer.splits_subdir)
    table = read_class_table(cache)
    writer.check_table(table, cache)
    feats = load_features(cache)
    used = sorted({c for stage in STAGE_SPLITS for c in splits[stage].classes}, key=str.lower)
    return ExportSource(cache, features, dataset, split_name, text_order, info, splits_dir, splits, table,
                        list(feats.video_ids), feats.audio.numpy(), feats.visual.numpy(), used)


def export_layout(writer: LayoutWriter, source: ExportSource, out_dir: Path, overwrite: bool) -> ExportResult:
    """Write the export ``source`` describes into ``out_dir`` in ``writer``'s layout (see the module docstring).

    Per stage split and class of its class list (spelled as there), the class's rows in split-file order; classes
    with no video in the cache get empty files. ``out_dir`` must be empty unless ``overwrite`` (which replaces only
    what the export writes); a run that died is replaced by the next one.
    """
    ref, map_name = writer.prepare(source)
    out_dir = Path(out_dir)
    position = {vid: i for i, vid in enumerate(source.video_ids)}
    owned = (f"features/{source.features}", "class-split", *writer.owned(source.features), EXPORT_RECORD)
    feature_dir = out_dir / "features" / source.features
    with writing_output(out_dir, owned, overwrite, "folder", EXPORT_MARKER):
        result = ExportResult(out_dir, {}, text_order=source.text_order, text_classes=len(ref.text),
                              filled_zero=ref.filled_zero, zero_used=ref.zero_used)
        for stage in STAGE_SPLITS:
            by_class, missing, matched = stage_class_rows(source.splits[stage], stage, source.splits_dir,
                                                          source.video_ids, position, error=writer.error)
            if missing:
                result.missing[stage] = missing
            stage_dirs = (feature_dir / "audio" / stage, feature_dir / "video" / stage)
            for class_name, (names, rows) in by_class.items():
                audio, visual = (matrix[rows] if rows else np.zeros((0, matrix.shape[1]), np.float32)
                                 for matrix in (source.audio, source.visual))
                writer.write_class(stage_dirs, class_name, names, audio, visual)
            result.stage_videos[stage] = matched
            _logger.info("%s: wrote %d classes, %d videos", stage, len(by_class), matched)
            crash_point(f"{writer.name}-export-{stage}")
        text_record = writer.write_text(feature_dir, out_dir)
        result.class_split = write_class_split(out_dir, source.dataset, source.splits_dir, source.split_name, ref,
                                               source.table, map_name)
        record = {
            "cache": str(source.cache.resolve()), "dataset": source.dataset, "features": source.features,
            "split_name": source.split_name, "splits_dir": str(source.splits_dir), "text_order": source.text_order,
            "text_classes": len(ref.text), **text_record, "filled_zero": ref.filled_zero, "zero_used": ref.zero_used,
            "stage_videos": result.stage_videos, "missing": {k: len(v) for k, v in result.missing.items()},
            "code_version": package_version(),
        }
        atomic_write_text(out_dir / EXPORT_RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")
    _logger.info("exported %d videos to %s", sum(result.stage_videos.values()), feature_dir)
    return result
