"""The import skeleton every released layout shares: argument checks, the stage loop, the cache writing.

A layout is a :class:`LayoutReader` (which class files a stage split has, how one class's audio and video files
are read, and which class-name embedding each class gets). :func:`import_layout` does the rest the same way for
every layout: it reads the six stage splits in order, keeps a video listed in several of them once after checking
its features agree (:class:`~avzsl.pipeline.interop.common.VideoCollector`), checks that every video has the same
feature sizes, and writes the shards, the class table, the implied split folder and ``cache.json`` under the output
folder's lock (:func:`~avzsl.pipeline.interop.common.writing_output`), then finalizes the cache.
"""

from __future__ import annotations

import datetime as _dt
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from avzsl.data_manifests import dataset_key
from avzsl.pipeline.cache import (
    CACHE_INFO,
    CLASS_TABLE,
    INDEX_CSV,
    INDEX_H5,
    SHARD_DIR,
    ClassTable,
    VideoFeatures,
    finalize,
    shard_path,
    write_cache_info,
    write_class_table,
    write_shard,
)
from avzsl.pipeline.core.errors import InvalidValueError
from avzsl.pipeline.core.faults import crash_point
from avzsl.pipeline.core.version import package_version
from avzsl.pipeline.data.splits import STAGE_SPLITS, write_split_folder
from avzsl.pipeline.interop.common import (
    EMBEDDING_ORDERS,
    IMPORT_MARKER,
    InteropError,
    VideoCollector,
    check_folder_name,
    checked_path,
    writing_output,
)

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImportSource:
    """The released folder an import reads, checked by :func:`open_source`.

    Attributes:
        root: the dataset folder, resolved.
        features: the feature method folder name under ``root/features``.
        feature_dir: ``root/features/<features>``, resolved.
        dataset: benchmark key (``ucf``/``activitynet``/``vggsound``) or ``None``.
        embedding_order: ``by_name`` or ``reference``.
        allow_outside: whether files may resolve (through symlinks) outside ``root``.
    """

    root: Path
    features: str
    feature_dir: Path
    dataset: str | None
    embedding_order: str
    allow_outside: bool

    def checked(self, path: Path) -> Path:
        """``path`` resolved; refused when it lies outside the root (unless ``allow_outside``)."""
        return checked_path(path, self.root, self.allow_outside)

    def relative(self, path: Path) -> str:
        """How ``cache.json`` names a source file: relative to the root (POSIX) when inside it, else absolute."""
        return path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)


@dataclass
class ClassText:
    """The class-name embeddings an import stores, one row per class (in the order of the classes asked for).

    Attributes:
        keys: the text-dict key of each class (the class table's phrases).
        embeddings: ``(C, D)`` float32.
        reassigned: classes given another class's key (``reference`` order only).
        provenance: class-table provenance entries naming the text file(s) and their sha256.
        record: ``cache.json`` record entries naming the text file(s) and their sha256.
        dims: feature sizes of the text part(s), added to the record's ``feature_dims``.
    """

    keys: list[str]
    embeddings: np.ndarray
    reassigned: list[str]
    provenance: dict[str, Any]
    record: dict[str, Any]
    dims: dict[str, int] = field(default_factory=dict)


class LayoutReader(ABC):
    """One released layout's files, read for :func:`import_layout`.

    Class attributes: ``name`` (``cache.json`` record key ``<name>_import``, shard source, crash points),
    ``title`` (the layout in messages), ``encoder`` (the encoder family its features come from), ``error``
    (raised for a malformed folder) and ``splits_subdir`` (the split folder written inside the cache).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    encoder: ClassVar[str]
    error: ClassVar[type[InteropError]]
    splits_subdir: ClassVar[Path]

    def __init__(self, source: ImportSource) -> None:
        self.source = source

    @abstractmethod
    def class_files(self, stage: str) -> Sequence[tuple[str, Path, Path]]:
        """``(class name as the file spells it, audio file, video file)`` of one stage split, in import order."""

    @abstractmethod
    def read_class(self, audio_file: Path, video_file: Path) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
        """One class's features: audio ``(N, D_A)`` float32, its N video names, visual ``(N, D_V)``, its names."""

    @abstractmethod
    def class_text(self, classes: list[str]) -> ClassText:
        """Read the class-name embedding(s) and choose each class's row (``source.embedding_order``)."""

    def log_skipped(self) -> None:  # noqa: B027 (a hook: nothing to log by default)
        """Log what the reader skipped, once every stage split is read (nothing by default)."""

    def record(self) -> dict[str, Any]:
        """Layout-specific entries of the ``cache.json`` record (none by default)."""
        return {}


@dataclass
class ImportResult:
    """What :func:`import_layout` did.

    Attributes:
        cache: the written cache directory.
        num_videos: distinct videos stored.
        classes: class names (file-name spelling), in class-table order.
        stage_videos: rows per stage split (videos listed in several stage splits count in each).
        repeated_videos: videos listed in more than one stage split (stored once, features checked equal).
        feature_dims: ``{"audio": D_A, "visual": D_V}`` plus the layout's text parts.
        embedding_order: ``by_name`` or ``reference``.
        reassigned_classes: classes whose stored embedding is another class's key (``reference`` order only).
        splits_dir: the split folder written inside the cache.
    """

    cache: Path
    num_videos: int
    classes: list[str]
    stage_videos: dict[str, int]
    repeated_videos: int
    feature_dims: dict[str, int]
    embedding_order: str
    reassigned_classes: list[str]
    splits_dir: Path


def open_source(reader: type[LayoutReader], root: Path, features: str, dataset: str | None, embedding_order: str,
                shard_size: int, allow_outside: bool, folder_names: Mapping[str, str] | None = None) -> ImportSource:
    """Check an import's arguments and find its feature folder.

    ``folder_names`` (``{what: value}``) are further names the layout joins below ``root`` (a split folder).
    Raises ``ValueError`` for an unknown order or a shard size below 1, ``reader.error`` for a name that is not a
    plain folder name or a missing feature folder.
    """
    if dataset is not None:
        dataset = dataset_key(dataset)
    if embedding_order not in EMBEDDING_ORDERS:
        raise InvalidValueError(f"unknown embedding order {embedding_order!r}; expected one of {EMBEDDING_ORDERS}")
    if shard_size < 1:
        raise InvalidValueError(f"shard_size must be positive, got {shard_size}")
    for what, value in {"feature method": features, **(folder_names or {})}.items():
        check_folder_name(value, what, reader.error)
    root = Path(root).resolve()
    feature_dir = checked_path(root / "features" / features, root, allow_outside)
    if not feature_dir.is_dir():
        raise reader.error(f"{root / 'features' / features}: {reader.title} feature folder not found")
    return ImportSource(root, features, feature_dir, dataset, embedding_order, allow_outside)


@dataclass
class _Collected:
    """The videos of all stage splits: who they are, which classes each stage lists, which rows it holds."""

    videos: VideoCollector
    classes: list[str]  # sorted, first spelling seen
    stage_classes: dict[str, list[str]]
    membership: dict[str, list[tuple[str, str]]]
    dims: tuple[int, int]  # (D_A, D_V)


def _collect(reader: LayoutReader) -> _Collected:
    """Read every stage split's class files (in ``STAGE_SPLITS`` order) and check the feature sizes agree."""
    collected = VideoCollector()
    spelling: dict[str, str] = {}  # class name lower -> first spelling seen
    membership: dict[str, list[tuple[str, str]]] = {}
    stage_classes: dict[str, list[str]] = {}
    for stage in STAGE_SPLITS:
        rows: list[tuple[str, str]] = []
        stage_classes[stage] = []
        for stem, audio_file, video_file in reader.class_files(stage):
            class_name = spelling.setdefault(stem.lower(), stem)
            stage_classes[stage].append(class_name)
            audio, audio_names, visual, visual_names = reader.read_class(audio_file, video_file)
            collected.add_class_files(class_name, audio_file, video_file, audio, audio_names, visual, visual_names,
                                      rows, reader.error)
        membership[stage] = rows
        _logger.info("%s: %d classes, %d videos", stage, len(stage_classes[stage]), len(rows))
    feature_dir = reader.source.feature_dir
    if not collected.videos:
        raise reader.error(f"{feature_dir}: no videos found")
    dims = {(v.audio.shape[0], v.visual.shape[0]) for v in collected.videos.values()}
    if len(dims) != 1:
        raise reader.error(f"{feature_dir}: feature dimensions (audio, video) differ between files: {sorted(dims)}")
    return _Collected(collected, sorted(spelling.values()), stage_classes, membership, next(iter(dims)))


def import_layout(reader: LayoutReader, out_cache: Path, shard_size: int, overwrite: bool) -> ImportResult:
    """Import the folder ``reader`` reads into the avzsl cache ``out_cache`` (see the module docstring).

    Args:
        reader: the layout's reader over a source from :func:`open_source`.
        out_cache: cache directory to write (must be empty or absent unless ``overwrite``).
        shard_size: videos per cache shard.
        overwrite: replace the cache entries this import writes if ``out_cache`` is not empty.
    """
    source = reader.source
    found = _collect(reader)
    reader.log_skipped()
    classes, videos, order = found.classes, found.videos.videos, found.videos.order
    text = reader.class_text(classes)
    if source.embedding_order == "reference":
        reassigned = text.reassigned
        _logger.warning("reference embedding order: %d of %d classes receive another class's embedding%s",
                        len(reassigned), len(classes), f" ({', '.join(reassigned[:8])}, ...)" if reassigned else "")
    feature_dims = {"audio": int(found.dims[0]), "visual": int(found.dims[1]), **text.dims}

    out_cache = Path(out_cache)
    owned = (SHARD_DIR, CLASS_TABLE, INDEX_H5, INDEX_CSV, CACHE_INFO, str(reader.splits_subdir))
    with writing_output(out_cache, owned, overwrite, "cache", IMPORT_MARKER):
        for index, start in enumerate(range(0, len(order), shard_size)):
            batch = [VideoFeatures(vid, videos[vid].class_name, videos[vid].audio, videos[vid].visual)
                     for vid in order[start : start + shard_size]]
            write_shard(shard_path(out_cache, index), batch, {"shard_index": index, "source": f"{reader.name}_import"})
            crash_point(f"{reader.name}-import-shard-{index}")
        write_class_table(out_cache, ClassTable(classes, text.keys, text.embeddings, provenance={
            "embedder": f"imported from {reader.title}", **text.provenance,
            "embedding_order": source.embedding_order, "reassigned_classes": text.reassigned,
        }))
        splits_dir = out_cache / reader.splits_subdir
        write_split_folder(splits_dir, found.stage_classes, found.membership)
        stage_videos = {stage: len(rows) for stage, rows in found.membership.items()}
        record = {
            "root": str(source.root), "features": source.features, "dataset": source.dataset,
            "embedding_order": source.embedding_order, **text.record, "reassigned_classes": text.reassigned,
            "stage_videos": stage_videos, "num_videos": len(order), "repeated_videos": len(found.videos.repeated),
            "feature_dims": feature_dims, **reader.record(),
            "imported_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        write_cache_info(out_cache, {
            "encoder": {"name": f"{reader.encoder} (imported from {reader.title} {source.features})"},
            "weights": {"sha256": "unknown (imported)"},
            "code_version": package_version(),
            f"{reader.name}_import": record,
        })
        finalize(out_cache)
    _logger.info("imported %d videos of %d classes into %s (%d listed in several stage splits, stored once)",
                 len(order), len(classes), out_cache, len(found.videos.repeated))
    return ImportResult(out_cache, len(order), classes, stage_videos, len(found.videos.repeated), feature_dims,
                        source.embedding_order, text.reassigned, splits_dir)
