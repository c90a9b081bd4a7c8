"""Two-stage GZSL split definitions in the reference (AVCA) format.

A split folder holds, per stage split, a class list ``stage_<name>.txt`` (one class per line) and a video list
``stage_<name>.csv`` (one row per video, with at least ``filename`` and ``label`` columns; the column order
differs between datasets). Class names are compared by :func:`class_key` (Unicode NFC, then case-folded), so the
reference code's case-insensitive matching holds (UCF videos say ``HandStandPushups`` where the class list says
``HandstandPushups``) and a name typed in NFC matches the same name in NFD.

Video rows are matched to cache video ids by :func:`match_videos`; a split folder is checked against the cache by
:mod:`avzsl.pipeline.data.split_checks`.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from avzsl.pipeline.core.atomic import atomic_write_csv, atomic_write_text
from avzsl.pipeline.data.class_names import checked_stage, class_key

_logger = logging.getLogger(__name__)

STAGE_SPLITS = (
    "stage_1_train",
    "stage_1_val_seen",
    "stage_1_val_unseen",
    "stage_2_train",
    "stage_2_test_seen",
    "stage_2_test_unseen",
)


class SplitError(ValueError):
    """A split folder or file is missing or malformed."""


@functools.lru_cache(maxsize=65536)  # a split folder repeats a few hundred labels over up to 10^5 rows
@dataclass(frozen=True)
class StageSplit:
    """One stage split.

    Attributes:
        name: e.g. ``stage_1_train``.
        classes: class names from the ``.txt`` list, in file order.
        videos: ``(filename, label)`` rows from the ``.csv`` (labels as spelled in the csv).
        class_file / video_file: the files they were read from ("" when built in memory), for messages.
        class_lines / video_lines: the line number of each class and of each row in those files (empty when built
            in memory).
    """

    name: str
    classes: tuple[str, ...]
    videos: tuple[tuple[str, str], ...]
    class_file: str = ""
    video_file: str = ""
    class_lines: tuple[int, ...] = ()
    video_lines: tuple[int, ...] = ()

    def videos_of_listed_classes(self) -> tuple[tuple[str, str], ...]:
        """Rows whose label is one of ``classes`` (compared by :func:`class_key`).

        The ``cls`` split variant reuses the ``main`` video lists and drops a few test-unseen classes; their
        videos are filtered out here, as in the reference code.
        """
        keep = {class_key(c) for c in self.classes}
        return tuple(row for row in self.videos if class_key(row[1]) in keep)

    def listed_rows(self) -> list[tuple[int, str, str]]:
        """``(line, filename, label)`` of the rows :meth:`videos_of_listed_classes` keeps (line 0 when unknown)."""
        keep = {class_key(c) for c in self.classes}
        lines = self.video_lines or (0,) * len(self.videos)
        return [(line, f, label) for line, (f, label) in zip(lines, self.videos, strict=True)
                if class_key(label) in keep]

    def class_line(self, index: int) -> int:
        """Line number of ``classes[index]`` in :attr:`class_file` (0 when unknown)."""
        return self.class_lines[index] if index < len(self.class_lines) else 0


@dataclass(frozen=True)
class Splits:
    """All six stage splits of one benchmark protocol."""

    stages: dict[str, StageSplit]
    source: str

    def __getitem__(self, name: str) -> StageSplit:
        return self.stages[name]


def read_class_list(path: Path) -> tuple[str, ...]:
    """Class names of a ``stage_*.txt`` file (blank lines ignored)."""
    return tuple(name for _, name in read_class_lines(path))


def read_class_lines(path: Path) -> list[tuple[int, str]]:
    """``(line number, class name)`` of a ``stage_*.txt`` file (blank lines ignored)."""
    if not path.is_file():
        raise SplitError(f"{path}: class list not found")
    lines = path.read_text(encoding="utf-8").splitlines()
    named = [(number, line.strip()) for number, line in enumerate(lines, start=1) if line.strip()]
    if not named:
        raise SplitError(f"{path}: class list is empty")
    return named


def read_video_list(path: Path) -> tuple[tuple[str, str], ...]:
    """``(filename, label)`` rows of a ``stage_*.csv`` file; columns are found by header name."""
    return read_video_rows(path)[0]


def read_video_rows(path: Path) -> tuple[tuple[tuple[str, str], ...], tuple[int, ...]]:
    """:func:`read_video_list` and the line on which each row ends (for messages naming the row)."""
    if not path.is_file():
        raise SplitError(f"{path}: video list not found")
    rows, lines = [], []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        if "filename" not in header or "label" not in header:
            raise SplitError(f"{path}: needs 'filename' and 'label' columns, has {header}")
        for row in reader:
            rows.append(((row["filename"] or "").strip(), (row["label"] or "").strip()))
            lines.append(reader.line_num)
    return tuple(rows), tuple(lines)


def _video_list_path(directory: Path, name: str) -> Path:
    exact = directory / f"{name}.csv"
    if exact.is_file():
        return exact
    # VGGSound's two train lists are shipped rebuilt, under a suffixed name.
    rebuilt = sorted(directory.glob(f"{name}_*.csv"))
    return rebuilt[0] if len(rebuilt) == 1 else exact


def load_splits(class_dir: Path, video_dir: Path | None = None) -> Splits:
    """Read the six stage splits.

    Args:
        class_dir: folder with ``stage_*.txt`` class lists.
        video_dir: folder with ``stage_*.csv`` video lists (default: ``class_dir``).
    """
    class_dir = Path(class_dir)
    video_dir = Path(video_dir) if video_dir is not None else class_dir
    if not class_dir.is_dir():
        raise SplitError(f"{class_dir}: split folder not found")
    stages = {}
    for name in STAGE_SPLITS:
        class_file, video_file = class_dir / f"{name}.txt", _video_list_path(video_dir, name)
        classes = read_class_lines(class_file)
        videos, lines = read_video_rows(video_file)
        stages[name] = StageSplit(
            name=name,
            classes=tuple(c for _, c in classes),
            videos=videos,
            class_file=str(class_file),
            video_file=str(video_file),
            class_lines=tuple(n for n, _ in classes),
            video_lines=lines,
        )
    stages = {
        n: checked_stage(s, class_dir / f"{n}.txt", _video_list_path(video_dir, n), SplitError)
        for n, s in stages.items()
    }
    return Splits(stages=stages, source=str(class_dir))


def splits_digest(splits: Splits) -> str:
    """SHA-256 of what a split folder says (every stage's class list and rows, in file order).

    Taken over the parsed content, not the file bytes: line endings, extra columns and column order do not change
    it; any class, video or label does. A run records it to notice a split folder rewritten after training.
    """
    content = {name: {"classes": list(stage.classes), "videos": [list(row) for row in stage.videos]}
               for name, stage in sorted(splits.stages.items())}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _folder_and_stem(video_id: str) -> tuple[str, str]:
    """``("Class", "v")`` for ``Class/v.mp4``: :class:`~pathlib.PurePosixPath`'s parent and stem rules on a
    normalised id, with string operations (a split folder has up to 10^5 rows)."""
    folder, _, name = video_id.rpartition("/")
    dot = name.rfind(".")
    return folder, name[:dot] if 0 < dot < len(name) - 1 else name


def _stem_key(video_id: str) -> str:
    return _folder_and_stem(video_id)[1]


def _path_key(video_id: str) -> str:
    folder, stem = _folder_and_stem(video_id)
    return f"{folder}/{stem}" if folder else stem


@dataclass(frozen=True)
class VideoMatch:
    """Result of matching split rows to cache ids.

    Attributes:
        video_ids: cache id for each matched row, in row order.
        labels: the row's class label, for each matched row.
        missing: split filenames with no cache video.
        ambiguous: split filenames that match several cache videos by file stem.
    """

    video_ids: tuple[str, ...]
    labels: tuple[str, ...]
    missing: tuple[str, ...]
    ambiguous: tuple[str, ...]


class VideoResolver:
    """Resolves split filenames to cache video ids (the rules of :func:`match_videos`).

    Args:
        cache_ids: the ids of the videos the cache holds features of.
        known_ids: ids of further input videos the cache knows of but holds no features of (those that failed to
            extract, from its manifest): a bare stem they share with a cache video is ambiguous too.
    """

    def __init__(self, cache_ids: Sequence[str], known_ids: Sequence[str] = ()) -> None:
        self.cache_ids = set(cache_ids)
        self.by_path: dict[str, list[str]] = {}
        self.by_stem: dict[str, list[str]] = {}
        for vid in dict.fromkeys([*cache_ids, *known_ids]):
            self.by_path.setdefault(_path_key(vid), []).append(vid)
            self.by_stem.setdefault(_stem_key(vid), []).append(vid)

    def resolve(self, filename: str) -> tuple[str | None, tuple[str, ...]]:
        """``(cache id, ())`` for a match; ``(None, videos)`` when the name could mean several ``videos``;
        ``(None, ())`` when the cache holds no such video."""
        if filename in self.cache_ids:
            return filename, ()
        for table in (self.by_path, self.by_stem):
            found = table.get(filename, [])
            if len(found) > 1:
                return None, tuple(found)
            if found:
                return (found[0] if found[0] in self.cache_ids else None), ()
        return None, ()


def match_videos(
    rows: Sequence[tuple[str, str]], cache_ids: Sequence[str], known_ids: Sequence[str] = ()
) -> VideoMatch:
    """Match split ``(filename, label)`` rows to cache video ids.

    A split filename matches, in order of preference: a cache id equal to it; a cache id equal to it without
    the file extension (``Class/v_x_g01_c01.avi`` for ``Class/v_x_g01_c01``); a cache id whose file stem
    equals it (``v_x_g01_c01``), only when that stem is unique among the cache's videos and ``known_ids`` (input
    videos that failed to extract). A name shared by two videos is reported as ambiguous, never resolved by
    guessing.
    """
    resolver = VideoResolver(cache_ids, known_ids)
    ids, labels, missing, ambiguous = [], [], [], []
    for filename, label in rows:
        vid, candidates = resolver.resolve(filename)
        if candidates:
            ambiguous.append(filename)
        elif vid is None:
            missing.append(filename)
        else:
            ids.append(vid)
            labels.append(label)
    return VideoMatch(tuple(ids), tuple(labels), tuple(missing), tuple(ambiguous))


def write_protocol_splits(
    out_dir: Path,
    class_videos: dict[str, Sequence[str]],
    seen: Sequence[str],
    val_unseen: Sequence[str],
    test_unseen: Sequence[str],
    seed: int = 0,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    held_out: Mapping[str, Sequence[str]] | None = None,
    validation: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Write a split folder in the reference format for a new dataset (demo, synthetic data, user collections).

    Mirrors the benchmark structure: videos of ``seen`` classes are divided into stage_1_train, stage_1_val_seen and
    stage_2_test_seen; videos of ``val_unseen`` classes go to stage_1_val_unseen, except a ``test_fraction`` held out
    for stage_2_test_seen (they are seen in stage 2); stage_2_train = stage_1_train + stage_1_val_seen +
    stage_1_val_unseen; ``test_unseen`` classes are never trained on.

    Args:
        out_dir: folder to create.
        class_videos: video ids per class.
        seen, val_unseen, test_unseen: disjoint class lists.
        seed: seed of the per-class shuffles.
        held_out: ``{class: video ids}`` that are the test videos of a seen or validation-unseen class (made from
            media the class never trains on); that class's other videos are then never test videos. Classes not
            in it get ``test_fraction`` of their videos at random.
        validation: ``{class: video ids}`` that are the stage-1 validation videos of a seen class (instead of
            ``val_fraction`` of its non-test videos at random).
    """
    import random

    groups = [set(seen), set(val_unseen), set(test_unseen)]
    if groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2]:
        raise SplitError("seen, val_unseen and test_unseen classes must be disjoint")
    rng = random.Random(seed)
    rows: dict[str, list[tuple[str, str]]] = {name: [] for name in STAGE_SPLITS}

    def cut(videos: Sequence[str], fraction: float) -> tuple[list[str], list[str]]:
        items = sorted(videos)
        rng.shuffle(items)
        k = max(1, round(len(items) * fraction)) if len(items) > 2 else 0
        return items[k:], items[:k]

    held_out = held_out or {}
    validation = validation or {}

    def test_cut(cls: str) -> tuple[list[str], list[str]]:
        if cls in held_out:
            test = set(held_out[cls])
            return sorted(v for v in class_videos[cls] if v not in test), sorted(test)
        return cut(class_videos[cls], test_fraction)

    for cls in seen:
        rest, test = test_cut(cls)
        if cls in validation:
            fixed = set(validation[cls])
            val, train = sorted(fixed), [v for v in rest if v not in fixed]
        else:
            train, val = cut(rest, val_fraction)
        rows["stage_1_train"] += [(v, cls) for v in train]
        rows["stage_1_val_seen"] += [(v, cls) for v in val]
        rows["stage_2_test_seen"] += [(v, cls) for v in test]
    for cls in val_unseen:
        val, test = test_cut(cls)
        rows["stage_1_val_unseen"] += [(v, cls) for v in val]
        rows["stage_2_test_seen"] += [(v, cls) for v in test]
    for cls in test_unseen:
        rows["stage_2_test_unseen"] += [(v, cls) for v in sorted(class_videos[cls])]
    rows["stage_2_train"] = rows["stage_1_train"] + rows["stage_1_val_seen"] + rows["stage_1_val_unseen"]
    classes = {
        "stage_1_train": list(seen),
        "stage_1_val_seen": list(seen),
        "stage_1_val_unseen": list(val_unseen),
        "stage_2_train": list(seen) + list(val_unseen),
        "stage_2_test_seen": list(seen) + list(val_unseen),
        "stage_2_test_unseen": list(test_unseen),
    }
    write_split_folder(out_dir, classes, rows)
    return Path(out_dir)


def write_split_folder(
    directory: Path, stage_classes: Mapping[str, Sequence[str]], membership: Mapping[str, Sequence[tuple[str, str]]]
) -> None:
    """Write ``stage_*.txt`` (class per line) and ``stage_*.csv`` (``filename,label``) for every stage split,
    each file atomically."""

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for stage in STAGE_SPLITS:
        atomic_write_text(directory / f"{stage}.txt", "".join(f"{c}\n" for c in stage_classes[stage]))
        atomic_write_csv(directory / f"{stage}.csv", ["filename", "label"], membership[stage])
