"""``avzsl-import clipclap``: read a ClipClap-GZSL feature folder into an avzsl cache.

The ClipClap reader plugged into the shared import skeleton (``pipeline/interop/importing.py``). The folder
is what ClipClap's loader reads (layout and loader contract: ``pipeline/interop/clipclap/layout.py``). Every
per-class pickle and both text dicts are read with the restricted unpickler (no code runs). The checks are the
AVCA import's: audio and video files of a class hold the same videos in the same order, rows and names agree
within a file, a video listed in several stage splits carries the same features everywhere; in addition, when the
folder has ``class-split/``, every class file must be a class of ``all_class.txt`` and every class a stage's
``stage_*.txt`` lists must have a file (a file the list omits is skipped, as the loader drops its rows). The
implied split membership is written as ``CACHE/splits/clipclap``. Details:
``docs/clipclap_interop.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from avzsl.data_manifests import all_classes as benchmark_classes
from avzsl.hashing import file_sha256
from avzsl.pipeline.core.safe_pickle import load_text_embedding_dict
from avzsl.pipeline.data.splits import STAGE_SPLITS, read_class_list
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
from avzsl.pipeline.interop.common import reference_class_keys
from avzsl.pipeline.interop.importing import (
    ClassText,
    ImportResult,
    ImportSource,
    LayoutReader,
    import_layout,
    open_source,
)

_logger = logging.getLogger(__name__)


@dataclass
class ClipClapImportReport(ImportResult):
    """What :func:`import_clipclap` did: an :class:`~avzsl.pipeline.interop.importing.ImportResult` (class names in
    file-stem spelling; ``feature_dims`` ``{"audio": D_A, "visual": D_V, "clip_text": .., "clap_text": ..}``;
    ``reassigned_classes``: classes whose row is another class's key) and ``text_files``, the two text dicts read,
    ``{"clip": path, "clap": path}``.
    """

    text_files: dict[str, Path]


def _stage_files(source: ImportSource, stage: str) -> list[tuple[str, Path, Path]]:
    """``(class name, audio file, video file)`` of one stage split, sorted by class name.

    Every entry of the two folders must be a ``<Class>.pkl`` with a partner in the other folder: ClipClap's loader
    unpickles every entry it finds, so anything else would break (or silently mislabel) it.
    """
    feature_dir = source.feature_dir
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
            files[entry.stem] = source.checked(entry)
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


def _find_text_files(source: ImportSource) -> dict[str, Path]:
    """The CLIP and the WavCaps/CLAP text dict (the dataset's names, else the one ``*_normed.npy`` of each kind)."""
    text_dir, dataset = source.feature_dir / "text", source.dataset
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
        files[part] = source.checked(path)
    return files


class ClipClapReader(LayoutReader):
    """ClipClap folders: per-class pickles and the CLIP and WavCaps/CLAP text dicts, checked against ``class-split/``.

    Every stage folder is listed, and checked against ``class-split/`` when the folder has it, before any class file
    is read: the reader is made with the whole listing.
    """

    name = "clipclap"
    title = "ClipClap"
    encoder = "clip_clap"
    error = ClipClapError
    splits_subdir = SPLITS_SUBDIR

    def __init__(self, source: ImportSource, split_name: str) -> None:
        super().__init__(source)
        self.split_name = split_name
        self.stage_files = {stage: _stage_files(source, stage) for stage in STAGE_SPLITS}
        self.all_classes, self.listed = _check_against_class_split(source.root, split_name, source.dataset,
                                                                   self.stage_files)
        self.unlisted: dict[str, list[str]] = {}
        self.fps: set[int] = set()
        self.text_files: dict[str, Path] = {}

    def class_files(self, stage: str) -> Sequence[tuple[str, Path, Path]]:
        """The stage's class files that its ``stage_*.txt`` lists (all when it has none); records the others."""
        fold = _folder(self.source.dataset)
        kept = []
        for stem, audio_file, video_file in self.stage_files[stage]:
            if stage in self.listed and fold(stem) not in self.listed[stage]:
                self.unlisted.setdefault(stage, []).append(stem)  # the loader reads the file and drops its rows
                continue
            kept.append((stem, audio_file, video_file))
        return kept

    def read_class(self, audio_file: Path, video_file: Path) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
        """The two pickles of a class, read with the restricted unpickler (the audio file's fps is recorded)."""
        audio, audio_names, fps = read_class_pickle(audio_file)
        visual, visual_names, _ = read_class_pickle(video_file)
        self.fps.update(fps)
        return audio, audio_names, visual, visual_names

    def log_skipped(self) -> None:
        """Warn about the class files a stage list omits (ClipClap's loader reads and drops them)."""
        for stage, names in self.unlisted.items():
            _logger.warning("%s: %d class file(s) not listed in %s (ClipClap's loader reads and drops them; not "
                            "imported for this stage): %s", stage, len(names),
                            self.source.root / "class-split" / self.split_name / f"{stage}.txt", ", ".join(names))

    def class_text(self, classes: list[str]) -> ClassText:
        """Per class, ``[CLIP text | WavCaps text]`` (``(C, D_clip + D_clap)``), as ClipClap concatenates them."""
        source = self.source
        files = _find_text_files(source)
        _logger.info("reading %s with the restricted unpickler (numeric arrays only)",
                     ", ".join(str(p) for p in files.values()))
        text = {part: load_text_embedding_dict(path) for part, path in files.items()}
        text_dims = check_text_dims(text, files)
        keys, reassigned = self._class_rows(classes, text, files)
        embeddings = np.stack([np.concatenate([text["clip"][k], text["clap"][k]]) for k in keys]).astype(np.float32)
        self.text_files = files
        shas = {part: file_sha256(path) for part, path in files.items()}
        rel = {part: source.relative(path) for part, path in files.items()}
        clip_dim = text_dims["clip"]
        provenance = {
            "kind": "imported",
            # Column slices, in the layout the zero-shot method defaults to ([clip text | clap text]).
            "segments": {"clip_text": [0, clip_dim], "clap_text": [clip_dim, clip_dim + text_dims["clap"]]},
            "files": {part: Path(p).name for part, p in rel.items()}, "sha256": shas,
        }
        return ClassText(keys, embeddings, reassigned, provenance, record={"text_files": rel, "text_sha256": shas},
                         dims={"clip_text": text_dims["clip"], "clap_text": text_dims["clap"]})

    def _class_rows(self, classes: list[str], text: Mapping[str, Mapping[str, np.ndarray]],
                    files: Mapping[str, Path]) -> tuple[list[str], list[str]]:
        """The text key of each class and the classes given another class's key (``reference`` order)."""
        source = self.source
        mapping, map_source = key_map(source.dataset, source.root)
        if source.embedding_order == "by_name":
            return class_keys(classes, text["clip"], mapping, map_source, files["clip"]), []
        all_classes = self.all_classes
        if all_classes is None:
            if source.dataset is None:
                raise ClipClapError("the reference embedding order needs all_class.txt: give the dataset (--dataset) "
                                    f"or keep {source.root / 'class-split' / 'all_class.txt'}")
            all_classes = benchmark_classes(source.dataset)
        keys = reference_class_keys(classes, text["clip"], all_classes, ClipClapError, where=f"{files['clip']}: ")
        try:
            own = class_keys(classes, text["clip"], mapping, map_source, files["clip"])
        except ClipClapError:
            own = [""] * len(classes)  # names that match no key: every class counts as reassigned
        return keys, [n for n, k, o in zip(classes, keys, own, strict=True) if k != o]

    def record(self) -> dict[str, Any]:
        """The split folder checked against, the fps values and the class files a stage list omits."""
        return {"split_name": self.split_name, "fps": sorted(self.fps),
                "checked_against_class_split": self.all_classes is not None, "unlisted_class_files": self.unlisted}


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
    source = open_source(ClipClapReader, root, features, dataset, embedding_order, shard_size, allow_outside,
                         folder_names={"split folder": split_name})
    reader = ClipClapReader(source, split_name)
    result = import_layout(reader, out_cache, shard_size, overwrite)
    return ClipClapImportReport(**vars(result), text_files=reader.text_files)
