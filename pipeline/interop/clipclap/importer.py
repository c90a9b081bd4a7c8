"""``avzsl-import clipclap``: read a ClipClap-GZSL feature folder into an avzsl cache.

The folder is what ClipClap's loader reads (layout and loader contract: ``pipeline/interop/clipclap/layout.py``). Every
per-class pickle and both text dicts are read with the restricted unpickler (no code runs). The checks are the
AVCA import's: audio and video files of a class hold the same videos in the same order, rows and names agree
within a file, a video listed in several stage splits carries the same features everywhere; in addition, when the
folder has ``class-split/``, every class file must be a class of ``all_class.txt`` and every class a stage's
``stage_*.txt`` lists must have a file (a file the list omits is skipped, as the loader drops its rows). The
implied split membership is written as ``CACHE/splits/clipclap``. Details:
``docs/clipclap_interop.md``.
"""

from __future__ import annotations

import datetime as _dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
from avzsl.pipeline.core.safe_pickle import load_text_embedding_dict
from avzsl.pipeline.data.splits import STAGE_SPLITS, read_class_list, write_split_folder
from avzsl.pipeline.interop.avca.layout import (
    IMPORT_MARKER,
    VideoCollector,
    checked_path,
    code_version,
    sha256_file,
    writing_output,
)
from avzsl.pipeline.interop.clipclap.layout import (
    DEFAULT_FEATURES,
    DEFAULT_SPLIT,
    SPLITS_SUBDIR,
    TEXT_PARTS,
    ClipClapError,
    check_text_dims,
    class_keys,
    key_map,
    read_class_pickle,
    text_file_name,
)

_logger = logging.getLogger(__name__)

EMBEDDING_ORDERS = ("by_name", "reference")


@dataclass
class ClipClapImportReport:
    """What :func:`import_clipclap` did.

    Attributes:
        cache: the written cache directory.
        num_videos: distinct videos stored.
        classes: class names (file-stem spelling), in class-table order.
        stage_videos: rows per stage split (videos listed in several stage splits count in each).
        repeated_videos: videos listed in more than one stage split (stored once, features checked equal).
        feature_dims: ``{"audio": D_A, "visual": D_V, "clip_text": .., "clap_text": ..}``.
        embedding_order: ``by_name`` or ``reference``.
        reassigned_classes: classes whose row is another class's key (``reference`` order only).
        text_files: the two text dicts read, ``{"clip": path, "clap": path}``.
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
    text_files: dict[str, Path]
    splits_dir: Path


def _stage_files(feature_dir: Path, stage: str, root: Path, allow_outside: bool) -> list[tuple[str, Path, Path]]:
    """``(class name, audio file, video file)`` of one stage split, sorted by class name.

    Every entry of the two folders must be a ``<Class>.pkl`` with a partner in the other folder: ClipClap's loader
    unpickles every entry it finds, so anything else would break (or silently mislabel) it.
    """
    found: dict[str, dict[str, Path]] = {}
    for modality in ("audio", "video"):
        directory = feature_dir / modality / stage
        if not directory.is_dir():
            raise ClipClapError(f"{directory}: stage split folder not found (the layout needs all of "
                                f"{', '.join(STAGE_SPLITS)} for audio and video)")
        files: dict[str, Path] = {}
        for entry in sorted(directory.iterdir()):
            if entry.suffix != ".pkl" or not entry.is_file():
                raise ClipClapError(f"{entry}: not a <ClassName>.pkl file; ClipClap's loader reads every entry of "
                                    f"{directory} as a class file (remove it)")
            if entry.stem.lower() in {s.lower() for s in files}:
                raise ClipClapError(f"{entry}: a second file for class {entry.stem!r} (class names are matched "
                                    "case-insensitively)")
            files[entry.stem] = checked_path(entry, root, allow_outside)
        found[modality] = files
    audio, video = found["audio"], found["video"]
    for stem in sorted(set(audio) ^ set(video)):
        have, lack = ("audio", "video") if stem in audio else ("video", "audio")
        raise ClipClapError(f"{found[have][stem]}: {have} features without a {lack} file "
                            f"{feature_dir / lack / stage / (stem + '.pkl')}")
    return [(stem, audio[stem], video[stem]) for stem in sorted(audio)]


def _check_against_class_split(root: Path, split_name: str, dataset: str | None,
                               stage_files: Mapping[str, Sequence[tuple[str, Path, Path]]],
                               ) -> tuple[list[str] | None, dict[str, set[str]]]:
    """Check the class files against ``class-split/`` when the folder has it.

    Returns:
        ``all_class.txt`` (or None when absent) and, per stage split with a ``stage_*.txt``, the listed classes
        (folded as the loader's ``class_to_idx`` keys). A listed class without a file is an error; a class file
        that is not listed is what the loader reads and then drops (``classes_mask``): ClipClap's own release has
        such files (UCF ``stage_2_test_unseen``: BandMarching, BrushingTeeth, Typing), so the caller skips them.
    """
    class_split = root / "class-split"
    all_file = class_split / "all_class.txt"
    if not all_file.is_file():
        _logger.info("%s not found: class files are not checked against a class list", all_file)
        return None, {}
    fold = _folder(dataset)
    all_classes = list(read_class_list(all_file))
    known = {fold(c) for c in all_classes}
    listed: dict[str, set[str]] = {}
    for stage, files in stage_files.items():
        foreign = [(c, a) for c, a, _ in files if fold(c) not in known]
        if foreign:
            raise ClipClapError(f"{foreign[0][1]}: class {foreign[0][0]!r} is not in {all_file} (ClipClap's loader "
                                "would fail on it)")
        listed_file = class_split / split_name / f"{stage}.txt"
        if not listed_file.is_file():
            _logger.info("%s not found: %s is not checked against a class list", listed_file, stage)
            continue
        listed[stage] = {fold(c) for c in read_class_list(listed_file)}
        missing = sorted(listed[stage] - {fold(c) for c, _, _ in files})
        if missing:
            raise ClipClapError(f"{listed_file} lists {len(missing)} class(es) without a class file in "
                                f"{files[0][1].parent if files else stage}: {missing[:10]}")
    return all_classes, listed


def _folder(dataset: str | None) -> Any:
    """How the loader folds class names into ``class_to_idx`` keys (exact case only for VGGSound)."""
    return (lambda s: s) if dataset == "vggsound" else str.lower


def _find_text_files(text_dir: Path, dataset: str | None, root: Path, allow_outside: bool) -> dict[str, Path]:
    """The CLIP and the WavCaps/CLAP text dict (the dataset's names, else the one ``*_normed.npy`` of each kind)."""
    if not text_dir.is_dir():
        raise ClipClapError(f"{text_dir}: text embedding folder not found")
    files = {}
    for part in TEXT_PARTS:
        path = text_dir / text_file_name(part, dataset)
        if dataset is None and not path.is_file():
            pattern = "wavcaps_word_embeddings_*_normed.npy" if part == "clap" else "word_embeddings_*_normed.npy"
            found = sorted(text_dir.glob(pattern))
            if len(found) != 1:
                raise ClipClapError(f"{text_dir}: expected one {pattern} file, found {[p.name for p in found]}; give "
                                    "the dataset (--dataset) to pick the file ClipClap's loader opens")
            path = found[0]
        if not path.is_file():
            raise ClipClapError(f"{path}: text embedding file not found (ClipClap's loader opens this name)")
        files[part] = checked_path(path, root, allow_outside)
    return files


def _class_rows(classes: list[str], text: Mapping[str, Mapping[str, np.ndarray]], files: Mapping[str, Path],
                dataset: str | None, root: Path, order: str, all_classes: list[str] | None) -> tuple[list[str],
                                                                                                  list[str]]:
    """The text key of each class and the classes given another class's key (``reference`` order)."""
    mapping, source = key_map(dataset, root)
    if order == "by_name":
        return class_keys(classes, text["clip"], mapping, source, files["clip"]), []
    if all_classes is None:
        if dataset is None:
            raise ClipClapError("the reference embedding order needs all_class.txt: give the dataset (--dataset) or "
                                f"keep {root / 'class-split' / 'all_class.txt'}")
        from avzsl.data_manifests import all_classes as benchmark_classes

        all_classes = benchmark_classes(dataset)
    ids = {c.lower(): i for i, c in enumerate(sorted(all_classes))}
    table_keys = sorted(text["clip"])  # dict(sorted(data_raw.items())) in the loader
    keys = []
    for name in classes:
        class_id = ids.get(name.lower())
        if class_id is None:
            raise ClipClapError(f"class {name!r} is not in the dataset's all_class.txt (needed for the reference "
                                "order)")
        if class_id >= len(table_keys):
            raise ClipClapError(f"{files['clip']}: class {name!r} has id {class_id} but the dict has only "
                                f"{len(table_keys)} entries (the loader indexes it by class id)")
        keys.append(table_keys[class_id])
    try:
        own = class_keys(classes, text["clip"], mapping, source, files["clip"])
    except ClipClapError:
        own = [""] * len(classes)  # names that match no key: every class counts as reassigned
    return keys, [n for n, k, o in zip(classes, keys, own, strict=True) if k != o]


def import_clipclap(
    root: Path,
    out_cache: Path,
    features: str = DEFAULT_FEATURES,
    dataset: str | None = None,
    split_name: str = DEFAULT_SPLIT,
    embedding_order: str = "by_name",
    *,
    shard_size: int = 2000,
    allow_outside: bool = False,
    overwrite: bool = False,
) -> ClipClapImportReport:
    """Import a ClipClap-GZSL feature folder into an avzsl cache.

    Args:
        root: ClipClap dataset folder (its ``--root_dir``) holding ``features/<features>/``.
        out_cache: cache directory to write (must be empty or absent unless ``overwrite``).
        features: feature method folder (``cls_features_non_averaged``, ClipClap's ``feature_extraction_method``).
        dataset: ``ucf``/``activitynet``/``vggsound`` (any case) or ``None``; selects the text file names and the
            class-name map (UCF: ``clip_class_name`` column, others: ``manual``).
        split_name: folder under ``class-split/`` whose ``stage_*.txt`` the class files are checked against.
        embedding_order: ``by_name`` (each class its own key's vectors) or ``reference`` (the loader's positional
            lookup: class id ``k`` gets the ``k``-th key in sorted order).
        shard_size: videos per cache shard.
        allow_outside: accept files whose resolved path (symlinks followed) lies outside ``root``.
        overwrite: replace the cache entries this import writes if ``out_cache`` is not empty.

    Returns:
        A :class:`ClipClapImportReport`. The class table is ``(C, D_clip + D_clap)``: ``[CLIP text | WavCaps
        text]`` per class, as ClipClap concatenates them.
    """
    if dataset is not None:
        from avzsl.data_manifests import dataset_key

        dataset = dataset_key(dataset)
    if embedding_order not in EMBEDDING_ORDERS:
        raise ValueError(f"unknown embedding order {embedding_order!r}; expected one of {EMBEDDING_ORDERS}")
    if shard_size < 1:
        raise ValueError(f"shard_size must be positive, got {shard_size}")
    for value, what in ((features, "feature method"), (split_name, "split folder")):
        if "/" in value or value in ("", ".", ".."):
            raise ClipClapError(f"{value!r}: the {what} must be a plain folder name")
    root = Path(root).resolve()
    feature_dir = checked_path(root / "features" / features, root, allow_outside)
    if not feature_dir.is_dir():
        raise ClipClapError(f"{root / 'features' / features}: ClipClap feature folder not found")

    collected = VideoCollector()
    videos, order, repeated = collected.videos, collected.order, collected.repeated
    spelling: dict[str, str] = {}  # class name lower -> first spelling seen
    membership: dict[str, list[tuple[str, str]]] = {}
    stage_classes: dict[str, list[str]] = {}
    fps_values: set[int] = set()
    stage_files = {stage: _stage_files(feature_dir, stage, root, allow_outside) for stage in STAGE_SPLITS}
    all_classes, listed = _check_against_class_split(root, split_name, dataset, stage_files)
    fold = _folder(dataset)
    unlisted: dict[str, list[str]] = {}
    for stage in STAGE_SPLITS:
        rows: list[tuple[str, str]] = []
        stage_classes[stage] = []
        for stem, audio_file, video_file in stage_files[stage]:
            if stage in listed and fold(stem) not in listed[stage]:
                unlisted.setdefault(stage, []).append(stem)  # the loader reads the file and drops its rows
                continue
            class_name = spelling.setdefault(stem.lower(), stem)
            stage_classes[stage].append(class_name)
            a_data, a_names, a_fps = read_class_pickle(audio_file)
            v_data, v_names, _ = read_class_pickle(video_file)
            fps_values.update(a_fps)
            collected.add_class_files(class_name, audio_file, video_file, a_data, a_names, v_data, v_names, rows,
                                      ClipClapError)
        membership[stage] = rows
        _logger.info("%s: %d classes, %d videos", stage, len(stage_classes[stage]), len(rows))
    if not videos:
        raise ClipClapError(f"{feature_dir}: no videos found")
    dims = {(v.audio.shape[0], v.visual.shape[0]) for v in videos.values()}
    if len(dims) != 1:
        raise ClipClapError(f"{feature_dir}: feature dimensions (audio, video) differ between files: {sorted(dims)}")
    for stage, names in unlisted.items():
        _logger.warning("%s: %d class file(s) not listed in %s (ClipClap's loader reads and drops them; not "
                        "imported for this stage): %s", stage, len(names),
                        root / "class-split" / split_name / f"{stage}.txt", ", ".join(names))

    text_files = _find_text_files(feature_dir / "text", dataset, root, allow_outside)
    _logger.info("reading %s with the restricted unpickler (numeric arrays only)",
                 ", ".join(str(p) for p in text_files.values()))
    text = {part: load_text_embedding_dict(path) for part, path in text_files.items()}
    text_dims = check_text_dims(text, text_files)
    classes = sorted(spelling.values())
    keys, reassigned = _class_rows(classes, text, text_files, dataset, root, embedding_order, all_classes)
    if embedding_order == "reference":
        _logger.warning("reference embedding order: %d of %d classes receive another class's embedding%s",
                        len(reassigned), len(classes), f" ({', '.join(reassigned[:8])}, ...)" if reassigned else "")
    embeddings = np.stack([np.concatenate([text["clip"][k], text["clap"][k]]) for k in keys]).astype(np.float32)
    audio_dim, visual_dim = next(iter(dims))
    feature_dims = {"audio": int(audio_dim), "visual": int(visual_dim), "clip_text": text_dims["clip"],
                    "clap_text": text_dims["clap"]}

    out_cache = Path(out_cache)
    owned = (SHARD_DIR, CLASS_TABLE, INDEX_H5, INDEX_CSV, CACHE_INFO, str(SPLITS_SUBDIR))
    with writing_output(out_cache, owned, overwrite, "cache", IMPORT_MARKER):
        for index, start in enumerate(range(0, len(order), shard_size)):
            batch = [VideoFeatures(vid, videos[vid].class_name, videos[vid].audio, videos[vid].visual)
                     for vid in order[start : start + shard_size]]
            write_shard(shard_path(out_cache, index), batch, {"shard_index": index, "source": "clipclap_import"})
            crash_point(f"clipclap-import-shard-{index}")
        shas = {part: sha256_file(path) for part, path in text_files.items()}
        rel = {part: path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
               for part, path in text_files.items()}
        clip_dim = text_dims["clip"]
        write_class_table(out_cache, ClassTable(classes, keys, embeddings, provenance={
            "embedder": "imported from ClipClap", "kind": "imported",
            # Column slices, in the layout the zero-shot method defaults to ([clip text | clap text]).
            "segments": {"clip_text": [0, clip_dim], "clap_text": [clip_dim, clip_dim + text_dims["clap"]]},
            "files": {part: Path(p).name for part, p in rel.items()}, "sha256": shas,
            "embedding_order": embedding_order, "reassigned_classes": reassigned,
        }))
        splits_dir = out_cache / SPLITS_SUBDIR
        write_split_folder(splits_dir, stage_classes, membership)
        stage_videos = {stage: len(rows) for stage, rows in membership.items()}
        record = {
            "root": str(root), "features": features, "dataset": dataset, "split_name": split_name,
            "embedding_order": embedding_order, "text_files": rel, "text_sha256": shas,
            "reassigned_classes": reassigned, "stage_videos": stage_videos, "num_videos": len(order),
            "repeated_videos": len(repeated), "feature_dims": feature_dims, "fps": sorted(fps_values),
            "checked_against_class_split": all_classes is not None, "unlisted_class_files": unlisted,
            "imported_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        }
        write_cache_info(out_cache, {
            "encoder": {"name": f"clip_clap (imported from ClipClap {features})"},
            "weights": {"sha256": "unknown (imported)"},
            "code_version": code_version(),
            "clipclap_import": record,
        })
        finalize(out_cache)
    _logger.info("imported %d videos of %d classes into %s (%d listed in several stage splits, stored once)",
                 len(order), len(classes), out_cache, len(repeated))
    return ClipClapImportReport(out_cache, len(order), classes, stage_videos, len(repeated), feature_dims,
                                embedding_order, reassigned, text_files, splits_dir)
