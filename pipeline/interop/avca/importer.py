"""``avzsl-import avca``: read a released AVCA feature folder into an avzsl cache.

The split membership the folder layout implies is written as a reference-format split folder
``CACHE/splits/avca``. Layout and checks: ``pipeline/interop/avca/layout.py`` and ``docs/avca_interop.md``.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
from avzsl.pipeline.core.faults import crash_point
from avzsl.pipeline.data.splits import STAGE_SPLITS, write_split_folder
from avzsl.pipeline.interop.avca.layout import (
    EMBEDDING_ORDERS,
    IMPORT_MARKER,
    MODALITIES,
    SPLITS_SUBDIR,
    AvcaError,
    ImportedVideo,
    VideoCollector,
    checked_path,
    code_version,
    find_text_file,
    load_text_dict,
    map_class_embeddings,
    read_class_file,
    sha256_file,
    writing_output,
)

_logger = logging.getLogger(__name__)



@dataclass
class ImportReport:
    """What :func:`import_avca` did.

    Attributes:
        cache: the written cache directory.
        num_videos: distinct videos stored.
        classes: class names (file-name spelling), in class-table order.
        stage_videos: rows per stage split (videos listed in several stage splits count in each).
        repeated_videos: videos listed in more than one stage split (stored once, features checked equal).
        embedding_order: ``by_name`` or ``reference``.
        reassigned_classes: classes whose stored embedding is another class's phrase (``reference`` order only;
            empty for ``by_name``).
        text_file: the embedding dict that was read.
        splits_dir: the split folder written inside the cache.
    """

    cache: Path
    num_videos: int
    classes: list[str]
    stage_videos: dict[str, int]
    repeated_videos: int
    embedding_order: str
    reassigned_classes: list[str]
    text_file: Path
    splits_dir: Path


def _read_stage(stage_dirs: dict[str, Path], root: Path, allow_outside: bool) -> list[tuple[str, Path, Path]]:
    """``(class name, audio file, video file)`` of one stage split, classes sorted by file name."""
    audio_dir, video_dir = stage_dirs["audio"], stage_dirs["video"]
    for directory in (audio_dir, video_dir):
        if not directory.is_dir():
            raise AvcaError(f"{directory}: stage split folder not found (the layout needs all of {STAGE_SPLITS})")
    audio = {p.stem: p for p in audio_dir.glob("*.h5")}
    video = {p.stem: p for p in video_dir.glob("*.h5")}
    extra = sorted(set(video) - set(audio))
    if extra:
        raise AvcaError(f"{video[extra[0]]}: video features without an audio file {audio_dir / (extra[0] + '.h5')}")
    pairs = []
    for stem in sorted(audio):
        if stem not in video:
            raise AvcaError(f"{audio[stem]}: audio features without a video file {video_dir / (stem + '.h5')}")
        pairs.append((stem, checked_path(audio[stem], root, allow_outside),
                      checked_path(video[stem], root, allow_outside)))
    return pairs


def import_avca(
    root: Path,
    out_cache: Path,
    features: str = "main_features",
    dataset: str | None = None,
    embedding_order: str = "by_name",
    *,
    shard_size: int = 2000,
    allow_outside: bool = False,
    overwrite: bool = False,
) -> ImportReport:
    """Import a released AVCA feature folder into an avzsl cache.

    Args:
        root: AVCA dataset folder holding ``features/<features>/``.
        out_cache: cache directory to write (must be empty or absent unless ``overwrite``).
        features: feature method folder name (``main_features`` = SeLaVi).
        dataset: ``ucf``/``activitynet``/``vggsound`` (any case) or ``None``; selects the class-name map.
        embedding_order: ``by_name`` (correct) or ``reference`` (reproduce the reference loader's mix-up).
        shard_size: videos per cache shard.
        allow_outside: accept files whose resolved path (symlinks followed) lies outside ``root``.
        overwrite: replace the cache entries this import writes if ``out_cache`` is not empty.

    Returns:
        An :class:`ImportReport`.
    """
    if dataset is not None:
        from avzsl.data_manifests import dataset_key

        dataset = dataset_key(dataset)
    if embedding_order not in EMBEDDING_ORDERS:
        raise ValueError(f"unknown embedding order {embedding_order!r}; expected one of {EMBEDDING_ORDERS}")
    if shard_size < 1:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    if "/" in features or features in ("", ".", ".."):
        raise AvcaError(f"{features!r}: the feature method must be a plain folder name")
    root = Path(root).resolve()
    feature_dir = checked_path(root / "features" / features, root, allow_outside)
    if not feature_dir.is_dir():
        raise AvcaError(f"{root / 'features' / features}: AVCA feature folder not found")

    collected = VideoCollector()
    videos, order, repeated = collected.videos, collected.order, collected.repeated
    spelling: dict[str, str] = {}  # class name lower -> first spelling seen
    membership: dict[str, list[tuple[str, str]]] = {}
    stage_classes: dict[str, list[str]] = {}
    for stage in STAGE_SPLITS:
        dirs = {m: feature_dir / m / stage for m in MODALITIES}
        rows: list[tuple[str, str]] = []
        stage_classes[stage] = []
        for stem, audio_file, video_file in _read_stage(dirs, root, allow_outside):
            class_name = spelling.setdefault(stem.lower(), stem)
            stage_classes[stage].append(class_name)
            a_data, a_urls = read_class_file(audio_file)
            v_data, v_urls = read_class_file(video_file)
            collected.add_class_files(class_name, audio_file, video_file, a_data, a_urls, v_data, v_urls, rows,
                                      AvcaError)
        membership[stage] = rows
        _logger.info("%s: %d classes, %d videos", stage, len(stage_classes[stage]), len(rows))
    if not videos:
        raise AvcaError(f"{feature_dir}: no videos found")
    dims = {(v.audio.shape[0], v.visual.shape[0]) for v in videos.values()}
    if len(dims) != 1:
        raise AvcaError(f"{feature_dir}: feature dimensions differ between files: {sorted(dims)}")

    text_file = checked_path(find_text_file(feature_dir / "text", dataset), root, allow_outside)
    _logger.info("reading %s with the restricted unpickler (numeric arrays only)", text_file)
    text = load_text_dict(text_file)
    classes = sorted(spelling.values())
    phrases, embeddings, reassigned = map_class_embeddings(classes, text, dataset, embedding_order, root)
    if embedding_order == "reference":
        _logger.warning("reference embedding order: %d of %d classes receive another class's embedding%s",
                        len(reassigned), len(classes), f" ({', '.join(reassigned[:8])}, ...)" if reassigned else "")

    out_cache = Path(out_cache)
    owned = (SHARD_DIR, CLASS_TABLE, INDEX_H5, INDEX_CSV, CACHE_INFO, str(SPLITS_SUBDIR))
    with writing_output(out_cache, owned, overwrite, "cache", IMPORT_MARKER):
        text_sha, splits_dir, stage_videos = _write_import(
            out_cache, order, videos, shard_size, text_file, classes, phrases, embeddings, embedding_order,
            reassigned, stage_classes, membership)
        record = {
            "root": str(root), "features": features, "dataset": dataset, "embedding_order": embedding_order,
            "text_file": text_file.relative_to(root).as_posix() if text_file.is_relative_to(root) else str(text_file),
            "text_sha256": text_sha, "reassigned_classes": reassigned, "stage_videos": stage_videos,
            "num_videos": len(order), "repeated_videos": len(repeated),
            "feature_dims": {"audio": int(next(iter(dims))[0]), "visual": int(next(iter(dims))[1])},
            "imported_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        write_cache_info(out_cache, {
            "encoder": {"name": f"selavi (imported from AVCA {features})"},
            "weights": {"sha256": "unknown (imported)"},
            "code_version": code_version(),
            "avca_import": record,
        })
        finalize(out_cache)
    _logger.info("imported %d videos of %d classes into %s (%d listed in several stage splits, stored once)",
                 len(order), len(classes), out_cache, len(repeated))
    return ImportReport(out_cache, len(order), classes, stage_videos, len(repeated), embedding_order, reassigned,
                        text_file, splits_dir)


def _write_import(
    out_cache: Path, order: Sequence[str], videos: Mapping[str, ImportedVideo], shard_size: int, text_file: Path,
    classes: list[str], phrases: list[str], embeddings: np.ndarray, embedding_order: str, reassigned: list[str],
    stage_classes: Mapping[str, Sequence[str]], membership: Mapping[str, Sequence[tuple[str, str]]],
) -> tuple[str, Path, dict[str, int]]:
    """Write the shards, class table and split folder of an import; returns (text sha256, splits dir, counts)."""
    for index, start in enumerate(range(0, len(order), shard_size)):
        batch = [VideoFeatures(vid, videos[vid].class_name, videos[vid].audio, videos[vid].visual)
                 for vid in order[start : start + shard_size]]
        write_shard(shard_path(out_cache, index), batch, {"shard_index": index, "source": "avca_import"})
        crash_point(f"avca-import-shard-{index}")
    text_sha = sha256_file(text_file)
    write_class_table(out_cache, ClassTable(classes, phrases, embeddings, provenance={
        "embedder": "imported from AVCA", "file": text_file.name, "sha256": text_sha,
        "embedding_order": embedding_order, "reassigned_classes": reassigned,
    }))
    splits_dir = out_cache / SPLITS_SUBDIR
    write_split_folder(splits_dir, stage_classes, membership)
    return text_sha, splits_dir, {stage: len(rows) for stage, rows in membership.items()}
