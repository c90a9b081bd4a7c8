"""``avzsl-export clipclap``: write an avzsl cache in the ClipClap-GZSL layout, complete for its loader.

Writes, under ``OUT`` (ClipClap's ``--root_dir``): ``features/<method>/{audio,video}/<stage_split>/<Class>.pkl``
(``{"features": [(D,) float32], "video_names": [bytes], "fps": [25]}``, as its splitting script writes them),
the two text dicts ``features/<method>/text/{,wavcaps_}word_embeddings_<ds>_normed.npy`` from the class table's
CLIP-text and CLAP-text columns, and ``class-split/`` (``all_class.txt``, the name map, ``<split>/stage_*``).
The class table must record those two column slices (``segments``: a ``text_towers`` class table or a ClipClap
import). Layout and loader contract: ``pipeline/interop/clipclap/layout.py``; details: ``docs/clipclap_interop.md``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from avzsl.pipeline.cache import CLASS_TABLE, ClassTable, load_features, read_cache_info, read_class_table
from avzsl.pipeline.core.atomic import atomic_write, atomic_write_text
from avzsl.pipeline.core.faults import crash_point
from avzsl.pipeline.data.splits import STAGE_SPLITS
from avzsl.pipeline.interop.avca.exporter import stage_class_rows
from avzsl.pipeline.interop.avca.layout import EXPORT_MARKER, code_version, load_export_splits, writing_output
from avzsl.pipeline.interop.avca.reference import TEXT_ORDERS, ReferenceText, reference_text, write_class_split
from avzsl.pipeline.interop.clipclap.layout import (
    CUSTOM_MAP,
    DEFAULT_FEATURES,
    DEFAULT_FPS,
    DEFAULT_SPLIT,
    EXPORT_RECORD,
    NAME_MAPS,
    PROCESSED_DIR,
    SPLITS_SUBDIR,
    TEXT_PARTS,
    ClipClapError,
    key_map,
    text_file_name,
    write_class_pickle,
)

_logger = logging.getLogger(__name__)

_SEGMENT_OF = {"clip": "clip_text", "clap": "clap_text"}  # text part -> class-table segment name


@dataclass
class ClipClapExportReport:
    """What :func:`export_clipclap` did.

    Attributes:
        out_dir: the dataset folder written.
        stage_videos: videos written per stage split.
        missing: per stage split, split filenames with no video in the cache (not written).
        text_files: the two written text dicts, ``{"clip": path, "clap": path}``.
        class_split: the written ``class-split`` folder.
        text_order: ``by_phrase`` or ``by_class_id``.
        text_classes: entries of each text dict (the benchmark's full class list with ``dataset``).
        filled_zero: classes absent from the cache, given zero vectors in both dicts.
        zero_used: split classes whose row in the loader's class-id-indexed table is a zero vector.
    """

    out_dir: Path
    stage_videos: dict[str, int]
    missing: dict[str, list[str]] = field(default_factory=dict)
    text_files: dict[str, Path] = field(default_factory=dict)
    class_split: Path | None = None
    text_order: str = "by_phrase"
    text_classes: int = 0
    filled_zero: list[str] = field(default_factory=list)
    zero_used: list[str] = field(default_factory=list)


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


def _write_text(path: Path, text: Mapping[str, np.ndarray]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: np.save would append ".npy" to a path
            # ClipClap reads exactly this (np.load(allow_pickle=True).item()); writing a pickle runs nothing.
            np.save(f, {k: np.asarray(v, np.float32) for k, v in text.items()}, allow_pickle=True)

    atomic_write(path, write)


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
            loader's positional lookup gives each class its own); see ``avca_reference.py``.
        overwrite: allow a non-empty ``out_dir``.

    Returns:
        A :class:`ClipClapExportReport`.
    """
    cache = Path(cache)
    if dataset is not None:
        from avzsl.data_manifests import dataset_key

        dataset = dataset_key(dataset)
    if text_order not in TEXT_ORDERS:
        raise ValueError(f"unknown text order {text_order!r}; expected one of {', '.join(TEXT_ORDERS)}")
    for value, what in ((features, "feature method"), (split_name, "split folder")):
        if "/" in value or value in ("", ".", ".."):
            raise ClipClapError(f"{value!r}: the {what} must be a plain folder name")
    read_cache_info(cache)  # refuses a folder that is no cache, naming cache.json
    splits_dir, splits = load_export_splits(cache, splits_dir, SPLITS_SUBDIR)
    table = read_class_table(cache)
    columns = text_columns(table, cache)
    feats = load_features(cache)
    audio, visual = feats.audio.numpy(), feats.visual.numpy()
    position = {vid: i for i, vid in enumerate(feats.video_ids)}
    used = sorted({c for stage in STAGE_SPLITS for c in splits[stage].classes}, key=str.lower)
    absent = [c for c in used if c.lower() not in {n.lower() for n in table.names}]
    if absent:
        raise ClipClapError(f"{splits_dir}: the split lists {len(absent)} class(es) the class table of {cache} lacks: "
                            f"{absent[:10]}")
    refs = _text_dicts(table, columns, dataset, text_order, used)
    ref = refs["clip"]
    if ref.filled_zero:
        _logger.warning("%d of %d classes are not in the cache and get zero vectors in both text dicts%s",
                        len(ref.filled_zero), len(ref.all_classes),
                        f"; {len(ref.zero_used)} classes of the split read such a row in the loader's class-id-indexed "
                        "table (use --text-order by_class_id)" if ref.zero_used else "")
    map_name = NAME_MAPS[dataset][0] if dataset is not None else CUSTOM_MAP[0]

    out_dir = Path(out_dir)
    owned = (f"features/{features}", "class-split", f"{PROCESSED_DIR}/{features}", EXPORT_RECORD)
    with writing_output(out_dir, owned, overwrite, "folder", EXPORT_MARKER):
        report = ClipClapExportReport(out_dir, {}, text_order=text_order, text_classes=len(ref.text),
                                      filled_zero=ref.filled_zero, zero_used=ref.zero_used)
        feature_dir = out_dir / "features" / features
        for stage in STAGE_SPLITS:
            by_class, missing, matched = stage_class_rows(splits[stage], stage, splits_dir, feats.video_ids,
                                                          position, error=ClipClapError)
            if missing:
                report.missing[stage] = missing
            for class_name, (names, rows) in by_class.items():
                fps = [DEFAULT_FPS] * len(rows)
                for modality, matrix in (("audio", audio), ("video", visual)):
                    data = matrix[rows] if rows else np.zeros((0, matrix.shape[1]), np.float32)
                    write_class_pickle(feature_dir / modality / stage / f"{class_name}.pkl", data, names, fps)
            report.stage_videos[stage] = matched
            _logger.info("%s: wrote %d classes, %d videos", stage, len(by_class), matched)
            crash_point(f"clipclap-export-{stage}")
        for part in TEXT_PARTS:
            path = feature_dir / "text" / text_file_name(part, dataset)
            _write_text(path, refs[part].text)
            report.text_files[part] = path
        # all_class.txt and the name map: the benchmark's files, else built from the class table (original, manual).
        report.class_split = write_class_split(out_dir, dataset, splits_dir, split_name, ref, table, map_name)
        record = {
            "cache": str(cache.resolve()), "dataset": dataset, "features": features, "split_name": split_name,
            "splits_dir": str(splits_dir), "text_order": text_order, "text_classes": len(ref.text),
            "text_files": {p: f.relative_to(out_dir).as_posix() for p, f in report.text_files.items()},
            "text_columns": {p: [c.start, c.stop] for p, c in columns.items()}, "filled_zero": ref.filled_zero,
            "zero_used": ref.zero_used, "stage_videos": report.stage_videos,
            "missing": {k: len(v) for k, v in report.missing.items()}, "code_version": code_version(),
        }
        atomic_write_text(out_dir / EXPORT_RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")
    _logger.info("exported %d videos to %s", sum(report.stage_videos.values()), feature_dir)
    return report
