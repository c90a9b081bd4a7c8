"""``avzsl-export avca``: write an avzsl cache in the AVCA layout, complete enough for the reference code.

Besides ``features/<method>/{audio,video,text}`` this writes the ``class-split/`` folder the reference loader
(ExplainableML/AVCA-GZSL, ``src/dataset.py``) opens, and a text-embedding dict covering the benchmark's full class
list (``avca_reference.py``). Layout: ``pipeline/avca_common.py``; details: ``docs/avca_interop.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from avzsl.pipeline.atomic import atomic_write
from avzsl.pipeline.avca_common import (
    EXPORT_MARKER,
    REFERENCE_TEXT_FILES,
    S80,
    SPLITS_SUBDIR,
    AvcaError,
    writing_output,
)
from avzsl.pipeline.cache import CLASS_TABLE, ClassTable, load_features, read_cache_info, read_class_table, write_h5
from avzsl.pipeline.faults import crash_point
from avzsl.pipeline.splits import STAGE_SPLITS, SplitError, load_splits, match_videos

_logger = logging.getLogger(__name__)


@dataclass
class ExportReport:
    """What :func:`export_avca` did.

    Attributes:
        out_dir: the dataset folder written (``out_dir/features/<features>/...``).
        stage_videos: videos written per stage split.
        missing: per stage split, split filenames with no video in the cache (not written).
        text_file: the written embedding dict.
        url_dtype: ``S80`` or ``vlen`` (see :func:`_url_dataset_dtype`).
    """

    out_dir: Path
    stage_videos: dict[str, int]
    missing: dict[str, list[str]] = field(default_factory=dict)
    text_file: Path | None = None
    url_dtype: str = "S80"


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


def _write_export(
    out_dir: Path, features: str, splits: Mapping[str, Any], splits_dir: Path, feats: Any, audio: np.ndarray,
    visual: np.ndarray, position: Mapping[str, int], table: ClassTable, text_file: str, cache: Path,
) -> tuple[ExportReport, set[str], Path]:
    """Write the class files of every stage split and the text dict; returns (report, url kinds, text path)."""
    feature_dir = out_dir / "features" / features
    report = ExportReport(out_dir, {})
    url_kinds = set()
    for stage in STAGE_SPLITS:
        split = splits[stage]
        rows = split.videos_of_listed_classes()
        match = match_videos(rows, feats.video_ids)
        if match.ambiguous:
            raise AvcaError(f"{splits_dir / (stage + '.csv')}: {len(match.ambiguous)} filename(s) match several "
                            f"cache videos, e.g. {list(match.ambiguous[:5])}")
        if match.missing:
            _logger.warning("%s: %d of %d videos are not in the cache (skipped), e.g. %s", stage,
                            len(match.missing), len(rows), list(match.missing[:3]))
            report.missing[stage] = list(match.missing)
        missing = set(match.missing)
        names = [row[0] for row in rows if row[0] not in missing]  # row filenames, in match order
        canonical = {c.lower(): c for c in split.classes}
        by_class: dict[str, list[int]] = {c: [] for c in split.classes}
        for k, label in enumerate(match.labels):
            by_class[canonical[label.lower()]].append(k)
        for class_name, members in by_class.items():
            if "/" in class_name or class_name in (".", ".."):
                raise AvcaError(f"{splits_dir / (stage + '.txt')}: class {class_name!r} cannot be a file name")
            if not members:
                _logger.warning("%s: class %s has no videos in the cache (empty file written)", stage, class_name)
            rows_idx = [position[match.video_ids[k]] for k in members]
            urls = [names[k] for k in members]
            url_dtype, kind = _url_dataset_dtype(urls)
            url_kinds.add(kind)
            dim = {"audio": audio.shape[1], "video": visual.shape[1]}
            for modality, matrix in (("audio", audio), ("video", visual)):
                data = matrix[rows_idx] if rows_idx else np.zeros((0, dim[modality]), np.float32)
                _write_class_file(feature_dir / modality / stage / f"{class_name}.h5", data, urls, url_dtype)
        report.stage_videos[stage] = len(match.video_ids)
        _logger.info("%s: wrote %d classes, %d videos", stage, len(split.classes), len(match.video_ids))
        crash_point(f"avca-export-{stage}")
    text: dict[str, np.ndarray] = {}
    for phrase, vector in zip(table.phrases, table.embeddings, strict=True):
        if phrase in text and not np.array_equal(text[phrase], vector):
            raise AvcaError(f"{cache / CLASS_TABLE}: phrase {phrase!r} has two different embeddings")
        text[phrase] = np.asarray(vector, dtype=np.float32)
    text_path = feature_dir / "text" / text_file

    def write_text(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: np.save would append ".npy" to a path
            np.save(f, text, allow_pickle=True)

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
    overwrite: bool = False,
) -> ExportReport:
    """Write an avzsl cache in the AVCA layout (see module docstring).

    Per stage split and class (the split's class list, spelled as there), ``audio``/``video`` ``.h5`` files with
    ``data`` ``(n, D)`` float32 and ``video_urls`` = the split's filenames (fixed ``S80`` bytes as in the reference
    release; variable-length UTF-8 only when a name is longer or not ASCII). Rows of classes not in a stage's class
    list are skipped (``cls`` variant), as the reference does. Split rows are matched to cache ids with
    :func:`~avzsl.pipeline.splits.match_videos`; unmatched rows are logged and reported, ambiguous ones are errors.
    The class table becomes ``text/<name>.npy``, ``np.save`` of ``{phrase: (D,) float32}``.

    Args:
        cache: avzsl cache directory.
        out_dir: AVCA dataset folder to write (``out_dir/features/<features>/``); must be empty unless ``overwrite``
            (which replaces only ``features/<features>``).
        splits_dir: reference-format split folder; default ``cache/splits/avca`` (written by :func:`import_avca`).
        features: feature method folder name.
        dataset: selects the reference embedding file name (``word_embeddings_<ds>_normed.npy``).
        text_file: embedding file name; default: the dataset's reference name when ``dataset`` is given, else the
            imported file's name, else ``word_embeddings_normed.npy``.
        overwrite: allow a non-empty ``out_dir``.
    """
    cache = Path(cache)
    info = read_cache_info(cache)
    if "/" in features or features in ("", ".", ".."):
        raise AvcaError(f"{features!r}: the feature method must be a plain folder name")
    splits_dir = Path(splits_dir) if splits_dir is not None else cache / SPLITS_SUBDIR
    if not splits_dir.is_dir():
        raise SplitError(f"{splits_dir}: split folder not found (give --splits DIR; only imported caches have "
                         f"{SPLITS_SUBDIR})")
    splits = load_splits(splits_dir)
    table = read_class_table(cache)
    feats = load_features(cache)
    audio, visual = feats.audio.numpy(), feats.visual.numpy()
    position = {vid: i for i, vid in enumerate(feats.video_ids)}
    if text_file is None:
        imported = info.get("avca_import", {}).get("text_file")
        if dataset is not None:
            from avzsl.data_manifests import dataset_key

            text_file = REFERENCE_TEXT_FILES[dataset_key(dataset)]
        elif imported:
            text_file = Path(imported).name
        else:
            text_file = "word_embeddings_normed.npy"
    if Path(text_file).name != text_file or not text_file.endswith(".npy"):
        raise AvcaError(f"{text_file!r}: the embedding file must be a plain *.npy file name")

    out_dir = Path(out_dir)
    with writing_output(out_dir, (f"features/{features}",), overwrite, "folder", EXPORT_MARKER):
        report, url_kinds, text_path = _write_export(out_dir, features, splits, splits_dir, feats, audio, visual,
                                                     position, table, text_file, cache)
    report.text_file = text_path
    report.url_dtype = "vlen" if "vlen" in url_kinds else "S80"
    _logger.info("exported %d videos to %s", sum(report.stage_videos.values()), out_dir / "features" / features)
    return report
