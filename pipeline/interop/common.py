"""What every released feature layout (AVCA, ClipClap) shares: errors, markers, video collection, class-name key
matching, the reference loaders' class-id lookup, and the locked, resumable output folders.

The import and export skeletons built on these are :mod:`avzsl.pipeline.interop.importing` and
:mod:`avzsl.pipeline.interop.exporting`; the layouts are ``interop/avca/`` and ``interop/clipclap/``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avzsl.pipeline.core.atomic import atomic_write, atomic_write_text, remove_temporaries_of
from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.core.faults import crash_point
from avzsl.pipeline.core.lock import LOCK_NAME, DirectoryLock
from avzsl.pipeline.data.splits import SplitError, Splits, StageSplit, load_splits, match_videos

_logger = logging.getLogger(__name__)

EMBEDDING_ORDERS = ("by_name", "reference")
# Present in an output folder while an import/export writes it; a rerun that finds it (the writer died) removes the
# partial output and starts again instead of refusing a non-empty folder.
IMPORT_MARKER = ".avzsl.import.incomplete"
EXPORT_MARKER = ".avzsl.export.incomplete"
EXPORT_RECORD = "avzsl_export.json"  # what was exported, from what, and how the text dict(s) were filled
DUPLICATE_ATOL = 1e-6  # a video found in two stage splits must carry the same features (up to float noise)


class InteropError(UserError):
    """A released feature folder (or the cache to export) is malformed; the message names the file(s).

    ``AvcaError`` (:mod:`avzsl.pipeline.interop.avca.layout`) is this class under the name it had when the AVCA
    code alone used it; ``ClipClapError`` is a subclass.
    """


@dataclass
class ImportedVideo:
    """One video's features read from a released layout: audio (D_A,), visual (D_V,)."""

    class_name: str
    audio: np.ndarray
    visual: np.ndarray
    source: str  # "audio file | video file", for error messages


@dataclass
class VideoCollector:
    """Gathers the videos of per-class audio/video files over all stage splits (every layout's import).

    A video may appear in several stage splits (stage-1 files reappear in stage 2): it is kept once, in first-seen
    order, and must carry the same class and features everywhere.
    """

    videos: dict[str, ImportedVideo] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    repeated: set[str] = field(default_factory=set)

    def add_class_files(self, class_name: str, audio_file: Path, video_file: Path,
                        audio: np.ndarray, audio_names: list[str], visual: np.ndarray, visual_names: list[str],
                        rows: list[tuple[str, str]], error: type[UserError]) -> None:
        """Add one class's files (audio (N, D_A), visual (N, D_V), N names each); append (video, class) to rows.

        Raises ``error`` naming the files when the two are not row-aligned or a repeated video disagrees.
        """
        if len(audio_names) != len(visual_names):
            raise error(f"{audio_file} and {video_file} are not row-aligned: "
                        f"{len(audio_names)} vs {len(visual_names)} videos")
        if audio_names != visual_names:
            i = next(i for i, (a, v) in enumerate(zip(audio_names, visual_names, strict=True)) if a != v)
            raise error(f"{audio_file} and {video_file} are not row-aligned: row {i} is "
                        f"{audio_names[i]!r} vs {visual_names[i]!r}")
        source = f"{audio_file} | {video_file}"
        for i, vid in enumerate(audio_names):
            rows.append((vid, class_name))
            seen = self.videos.get(vid)
            if seen is None:
                self.videos[vid] = ImportedVideo(class_name, audio[i], visual[i], source)
                self.order.append(vid)
                continue
            self.repeated.add(vid)
            if seen.class_name.lower() != class_name.lower():
                raise error(f"video {vid!r} is class {seen.class_name!r} in {seen.source} but "
                            f"{class_name!r} in {source}")
            for name, new, old in (("audio", audio[i], seen.audio), ("video", visual[i], seen.visual)):
                if new.shape != old.shape or not np.allclose(new, old, rtol=0, atol=DUPLICATE_ATOL):
                    diff = float(np.max(np.abs(new - old))) if new.shape == old.shape else float("nan")
                    raise error(f"video {vid!r} has different {name} features in {seen.source} and "
                                f"{source} (max abs difference {diff:.3g})")


def _normalise(name: str) -> str:
    """Name key for matching without a name map: lower-case, spaces and underscores removed."""
    return name.lower().replace(" ", "").replace("_", "")


def match_text_keys(class_names: Sequence[str], text: Mapping[str, Any],
                    name_map: Mapping[str, str] | None) -> tuple[dict[str, str], list[str]]:
    """The key of ``text`` for each class: its phrase from ``name_map`` (keyed by lower-case class name) when
    ``text`` holds it, else the one key with the same normalised name.

    Returns:
        ``({class name: key}, [classes with no key])``.
    """
    by_norm: dict[str, list[str]] = {}
    for key in text:
        by_norm.setdefault(_normalise(key), []).append(key)
    matched: dict[str, str] = {}
    unmatched = []
    for name in class_names:
        key = name_map.get(name.lower()) if name_map is not None else None
        if key is None or key not in text:
            candidates = by_norm.get(_normalise(key or name), [])
            key = candidates[0] if len(candidates) == 1 else None
        if key is None:
            unmatched.append(name)
        else:
            matched[name] = key
    return matched, unmatched


def reference_class_keys(class_names: Sequence[str], text_keys: Iterable[str], all_class_names: Sequence[str],
                         error: type[InteropError] = InteropError, where: str = "") -> list[str]:
    """The text key the reference loaders give each class (``reference`` embedding order).

    The AVCA-GZSL and ClipClap-GZSL loaders (``src/dataset.py``) build the text table as
    ``list(dict(sorted(text.items())).values())`` (sorted by key) and index it with the class id
    ``sorted(all_class).index(name)`` (sorted by ORIGINAL name), so class id ``k`` receives the ``k``-th key in key
    order, which is another class's wherever the two sort orders differ.

    Args:
        class_names: classes to look up (any case).
        text_keys: the keys of the text dict.
        all_class_names: the dataset's ``all_class.txt``, which defines the class ids.
        error: raised (naming the class) when a class has no id or its id lies past the table.
        where: prefix of that message (the text file, ``"PATH: "``).
    """
    ids = {c.lower(): i for i, c in enumerate(sorted(all_class_names))}
    table_keys = sorted(text_keys)  # dict(sorted(data_raw.items())) in the reference loaders
    keys = []
    for name in class_names:
        class_id = ids.get(name.lower())
        if class_id is None:
            raise error(f"class {name!r} is not in the dataset's all_class.txt (needed for the reference order)")
        if class_id >= len(table_keys):
            raise error(f"{where}class {name!r} has id {class_id} but the embedding dict has only "
                        f"{len(table_keys)} entries (the reference order indexes it by class id)")
        keys.append(table_keys[class_id])
    return keys


def check_folder_name(value: str, what: str, error: type[InteropError] = InteropError) -> None:
    """Refuse a ``value`` that is not a plain folder name (it is joined below a root the user gave)."""
    if "/" in value or value in ("", ".", ".."):
        raise error(f"{value!r}: the {what} must be a plain folder name")


def checked_path(path: Path, root: Path, allow_outside: bool) -> Path:
    """``path`` resolved (symlinks followed); refuses a result outside ``root`` unless ``allow_outside``."""
    resolved = Path(path).resolve()
    if not allow_outside and not resolved.is_relative_to(root):
        raise InteropError(f"{path}: resolves to {resolved}, outside the import root {root} (refused; "
                           "allow_outside=True / --allow-outside accepts it)")
    return resolved


def prepare_output(path: Path, owned: Sequence[str], overwrite: bool, what: str, marker: str | None = None) -> None:
    """Refuse a non-empty ``path`` unless ``overwrite``; with it, remove only the entries in ``owned``.

    A folder holding ``marker`` was left by an interrupted run of the same command: its ``owned`` entries are
    removed and the run starts again, as with ``overwrite``. The lock file (held by the caller) does not count.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InteropError(f"{path}: exists and is not a directory")
    if path.is_dir() and any(p.name != LOCK_NAME for p in path.iterdir()):
        interrupted = marker is not None and (path / marker).exists()
        if not overwrite and not interrupted:
            raise InteropError(f"{path}: output {what} is not empty (use --overwrite to replace it)")
        for name in (*owned, *([marker] if interrupted else [])):
            target = path / name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
        if interrupted:
            # Leftovers of atomic writes of the owned entries and the marker (we hold the lock); nothing else.
            remove_temporaries_of(path / name for name in (*owned, marker))
            _logger.warning("%s was left incomplete by an interrupted run: removed its partial %s, starting again",
                            path, what)
        else:
            _logger.info("--overwrite: removed the previous %s in %s", what, path)
    path.mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def writing_output(path: Path, owned: Sequence[str], overwrite: bool, what: str, marker: str) -> Iterator[None]:
    """Lock ``path``, prepare it (:func:`prepare_output`) and mark it incomplete until the block ends normally.

    A second process on the same folder is refused while this one runs (:class:`LockedError`); a run that dies
    leaves the marker, so the same command started again replaces the partial output instead of refusing it.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InteropError(f"{path}: exists and is not a directory")
    with DirectoryLock(path, what):
        prepare_output(path, owned, overwrite, what, marker)
        atomic_write_text(path / marker, json.dumps({"pid": os.getpid()}) + "\n")
        yield
        crash_point(f"before-done:{marker}")
        (path / marker).unlink()


def load_export_splits(cache: Path, splits_dir: Path | None, default_subdir: str | Path) -> tuple[Path, Splits]:
    """The split folder an export reads (``splits_dir``, else ``cache/default_subdir``) and its loaded splits."""
    splits_dir = Path(splits_dir) if splits_dir is not None else cache / default_subdir
    if not splits_dir.is_dir():
        raise SplitError(f"{splits_dir}: split folder not found (give --splits DIR; only imported caches have "
                         f"{default_subdir})")
    return splits_dir, load_splits(splits_dir)


def stage_class_rows(
    split: StageSplit, stage: str, splits_dir: Path, video_ids: Sequence[str], position: Mapping[str, int],
    error: type[Exception] = InteropError,
) -> tuple[dict[str, tuple[list[str], list[int]]], list[str], int]:
    """Per class of a stage split's class list: ``(split filenames, cache rows)``; plus the missing filenames.

    Rows of classes not in the stage's class list are skipped (``cls`` variant), as the reference loaders do. Split
    rows are matched to cache ids with :func:`~avzsl.pipeline.data.splits.match_videos`; unmatched rows are logged
    and returned, ambiguous ones are errors. The third value is the number of matched videos.
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


def write_text_dict(path: Path, text: Mapping[str, np.ndarray]) -> None:
    """Write ``{key: (D,) float32}`` atomically as the reference loaders read it: ``np.save`` of the dict (a pickle,
    which they load with ``np.load(allow_pickle=True).item()``)."""

    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: np.save would append ".npy" to a path
            # Writing a pickle runs nothing; only reading one can.
            np.save(f, {k: np.asarray(v, np.float32) for k, v in text.items()}, allow_pickle=True)

    atomic_write(Path(path), write)
