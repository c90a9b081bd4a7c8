"""``avzsl-export avca``: write an avzsl cache in the AVCA layout, complete enough for the reference code.

Besides ``features/<method>/{audio,video,text}`` this writes the ``class-split/`` folder the reference loader
(ExplainableML/AVCA-GZSL, ``src/dataset.py``) opens, and a text-embedding dict covering the benchmark's full class
list (``avca_reference.py``). Layout: ``pipeline/interop/avca/layout.py``; details: ``docs/avca_interop.md``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avzsl.pipeline.cache import load_features, read_cache_info, read_class_table, write_h5
from avzsl.pipeline.core.atomic import atomic_write, atomic_write_text
from avzsl.pipeline.core.faults import crash_point
from avzsl.pipeline.data.splits import STAGE_SPLITS, match_videos
from avzsl.pipeline.interop.avca.layout import (
    EXPORT_MARKER,
    REFERENCE_TEXT_FILES,
    S80,
    SPLITS_SUBDIR,
    AvcaError,
    code_version,
    load_export_splits,
    writing_output,
)
from avzsl.pipeline.interop.avca.reference import name_map_file, reference_text, write_class_split

_logger = logging.getLogger(__name__)

EXPORT_RECORD = "avzsl_export.json"  # what was exported, from what, and how the text dict was filled


@dataclass
class ExportReport:
    """What :func:`export_avca` did.

    Attributes:
        out_dir: the dataset folder written (``out_dir/features/<features>/...``).
        stage_videos: videos written per stage split.
        missing: per stage split, split filenames with no video in the cache (not written).
        text_file: the written embedding dict.
        url_dtype: ``S80`` or ``vlen`` (see :func:`_url_dataset_dtype`).
        class_split: the written ``class-split`` folder.
        text_order: ``by_phrase`` or ``by_class_id`` (``avca_reference.py``).
        text_classes: entries of the written embedding dict (the full class list with ``dataset``).
        filled_released / filled_zero: classes absent from the cache given the released / a zero embedding.
        zero_used: split classes whose row in the reference's class-id-indexed table is a zero vector.
    """

    out_dir: Path
    stage_videos: dict[str, int]
    missing: dict[str, list[str]] = field(default_factory=dict)
    text_file: Path | None = None
    url_dtype: str = "S80"
    class_split: Path | None = None
    text_order: str = "by_phrase"
    text_classes: int = 0
    filled_released: list[str] = field(default_factory=list)
    filled_zero: list[str] = field(default_factory=list)
    zero_used: list[str] = field(default_factory=list)


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


def stage_class_rows(
    split: Any, stage: str, splits_dir: Path, video_ids: Sequence[str], position: Mapping[str, int],
    error: type[Exception] = AvcaError,
) -> tuple[dict[str, tuple[list[str], list[int]]], list[str], int]:
    """Per class of a stage split's class list: ``(split filenames, cache rows)``; plus the missing filenames.

    Rows of classes not in the stage's class list are skipped (``cls`` variant), as the reference does. Split rows
    are matched to cache ids with :func:`~avzsl.pipeline.data.splits.match_videos`; unmatched rows are logged and
    returned, ambiguous ones are errors. The third value is the number of matched videos.
    """
    rows = split.videos_of_listed_classes()
    match = match_videos(rows, video_ids)
    if match.ambiguous:
        raise error(f"{splits_dir / (stage + '.csv')}: {len(match.ambiguous)} filename(s) match several "
                    f"cache videos, e.g. {list(match.ambiguous[:5])}")
    if match.missing:
        _logger.warning("%s: %d of %d videos are not in the cache (skipped), e.g. %s", stage,
                        len(match.missing), len(rows), list(match.missing[:3]))
    missing = set(match.missing)
    names = [row[0] for row in rows if row[0] not in missing]  # row filenames, in match order
    canonical = {c.lower(): c for c in split.classes}
    by_class: dict[str, tuple[list[str], list[int]]] = {c: ([], []) for c in split.classes}
    for k, label in enumerate(match.labels):
        urls, members = by_class[canonical[label.lower()]]
        urls.append(names[k])
        members.append(position[match.video_ids[k]])
    for class_name, (_, members) in by_class.items():
        if "/" in class_name or class_name in (".", ".."):
            raise error(f"{splits_dir / (stage + '.txt')}: class {class_name!r} cannot be a file name")
        if not members:
            _logger.warning("%s: class %s has no videos in the cache (empty file written)", stage, class_name)
    return by_class, list(match.missing), len(match.video_ids)


def _write_export(
    out_dir: Path, features: str, splits: Mapping[str, Any], splits_dir: Path, feats: Any, audio: np.ndarray,
    visual: np.ndarray, position: Mapping[str, int], text: Mapping[str, np.ndarray], text_file: str,
) -> tuple[ExportReport, set[str], Path]:
    """Write the class files of every stage split and the text dict; returns (report, url kinds, text path)."""
    feature_dir = out_dir / "features" / features
    report = ExportReport(out_dir, {})
    url_kinds = set()
    for stage in STAGE_SPLITS:
        by_class, missing, matched = stage_class_rows(splits[stage], stage, splits_dir, feats.video_ids, position)
        if missing:
            report.missing[stage] = missing
        for class_name, (urls, rows_idx) in by_class.items():
            url_dtype, kind = _url_dataset_dtype(urls)
            url_kinds.add(kind)
            dim = {"audio": audio.shape[1], "video": visual.shape[1]}
            for modality, matrix in (("audio", audio), ("video", visual)):
                data = matrix[rows_idx] if rows_idx else np.zeros((0, dim[modality]), np.float32)
                _write_class_file(feature_dir / modality / stage / f"{class_name}.h5", data, urls, url_dtype)
        report.stage_videos[stage] = matched
        _logger.info("%s: wrote %d classes, %d videos", stage, len(by_class), matched)
        crash_point(f"avca-export-{stage}")
    text_path = feature_dir / "text" / text_file

    def write_text(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: np.save would append ".npy" to a path
            # The reference reads exactly this (np.load(allow_pickle=True).item()); writing a pickle runs nothing.
            np.save(f, dict(text), allow_pickle=True)

    atomic_write(text_path, write_text)
    return report, url_kinds, text_path


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
    holds ``all_class.txt``, the name map and ``<split_name>/stage_*`` (``avca_reference.py``).

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
            each class's own embedding); see ``avca_reference.py``.
        overwrite: allow a non-empty ``out_dir`` (replaces ``features/<features>``, ``class-split`` and
            ``avzsl_export.json``).
    """
    cache = Path(cache)
    if dataset is not None:
        from avzsl.data_manifests import dataset_key

        dataset = dataset_key(dataset)
    info = read_cache_info(cache)
    if "/" in features or features in ("", ".", ".."):
        raise AvcaError(f"{features!r}: the feature method must be a plain folder name")
    splits_dir, splits = load_export_splits(cache, splits_dir, SPLITS_SUBDIR)
    table = read_class_table(cache)
    feats = load_features(cache)
    audio, visual = feats.audio.numpy(), feats.visual.numpy()
    position = {vid: i for i, vid in enumerate(feats.video_ids)}
    if text_file is None:
        imported = info.get("avca_import", {}).get("text_file")
        if dataset is not None:
            text_file = REFERENCE_TEXT_FILES[dataset]
        elif imported:
            text_file = Path(imported).name
        else:
            text_file = "word_embeddings_normed.npy"
    if Path(text_file).name != text_file or not text_file.endswith(".npy"):
        raise AvcaError(f"{text_file!r}: the embedding file must be a plain *.npy file name")

    used = sorted({c for stage in STAGE_SPLITS for c in splits[stage].classes}, key=str.lower)
    ref = reference_text(table, dataset, text_order, used)
    if ref.filled_zero:
        _logger.warning("%d of %d classes have no known embedding and get a zero vector in the text dict%s",
                        len(ref.filled_zero), len(ref.all_classes),
                        f"; {len(ref.zero_used)} classes of the split read such a row in the reference's "
                        f"class-id-indexed table (use --text-order by_class_id)" if ref.zero_used else "")
    if ref.filled_released:
        _logger.info("%d classes absent from the cache get their released embedding", len(ref.filled_released))

    out_dir = Path(out_dir)
    owned = (f"features/{features}", "class-split", EXPORT_RECORD)
    with writing_output(out_dir, owned, overwrite, "folder", EXPORT_MARKER):
        report, url_kinds, text_path = _write_export(out_dir, features, splits, splits_dir, feats, audio, visual,
                                                     position, ref.text, text_file)
        report.class_split = write_class_split(out_dir, dataset, splits_dir, split_name, ref, table,
                                               name_map_file(dataset, text_file))
        report.text_file = text_path
        report.url_dtype = "vlen" if "vlen" in url_kinds else "S80"
        report.text_order, report.text_classes = text_order, len(ref.text)
        report.filled_released, report.filled_zero, report.zero_used = (ref.filled_released, ref.filled_zero,
                                                                        ref.zero_used)
        record = {
            "cache": str(cache.resolve()), "dataset": dataset, "features": features, "split_name": split_name,
            "splits_dir": str(splits_dir), "text_file": text_path.relative_to(out_dir).as_posix(),
            "text_order": text_order, "text_classes": len(ref.text), "filled_released": ref.filled_released,
            "filled_zero": ref.filled_zero, "zero_used": ref.zero_used, "stage_videos": report.stage_videos,
            "missing": {k: len(v) for k, v in report.missing.items()}, "code_version": code_version(),
        }
        atomic_write_text(out_dir / EXPORT_RECORD, json.dumps(record, indent=2, sort_keys=True) + "\n")
    _logger.info("exported %d videos to %s", sum(report.stage_videos.values()), out_dir / "features" / features)
    return report
