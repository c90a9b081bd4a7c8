"""Two-stage GZSL split definitions in the reference (AVCA) format.

A split folder holds, per stage split, a class list ``stage_<name>.txt`` (one class per line) and a video list
``stage_<name>.csv`` (one row per video, with at least ``filename`` and ``label`` columns; the column order
differs between datasets). Class names are matched case-insensitively, as the reference code does
(UCF videos say ``HandStandPushups`` where the class list says ``HandstandPushups``).

Video rows are matched to cache video ids by :func:`match_videos`.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from avzsl.pipeline.core.atomic import atomic_write_csv, atomic_write_text
from avzsl.pipeline.data.class_names import checked_stage

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


@dataclass(frozen=True)
class StageSplit:
    """One stage split.

    Attributes:
        name: e.g. ``stage_1_train``.
        classes: class names from the ``.txt`` list, in file order.
        videos: ``(filename, label)`` rows from the ``.csv`` (labels as spelled in the csv).
    """

    name: str
    classes: tuple[str, ...]
    videos: tuple[tuple[str, str], ...]

    def videos_of_listed_classes(self) -> tuple[tuple[str, str], ...]:
        """Rows whose label is one of ``classes`` (case-insensitive).

        The ``cls`` split variant reuses the ``main`` video lists and drops a few test-unseen classes; their
        videos are filtered out here, as in the reference code.
        """
        keep = {c.lower() for c in self.classes}
        return tuple(row for row in self.videos if row[1].lower() in keep)


@dataclass(frozen=True)
class Splits:
    """All six stage splits of one benchmark protocol."""

    stages: dict[str, StageSplit]
    source: str

    def __getitem__(self, name: str) -> StageSplit:
        return self.stages[name]


def read_class_list(path: Path) -> tuple[str, ...]:
    """Class names of a ``stage_*.txt`` file (blank lines ignored)."""
    if not path.is_file():
        raise SplitError(f"{path}: class list not found")
    names = tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if not names:
        raise SplitError(f"{path}: class list is empty")
    return names


def read_video_list(path: Path) -> tuple[tuple[str, str], ...]:
    """``(filename, label)`` rows of a ``stage_*.csv`` file; columns are found by header name."""
    if not path.is_file():
        raise SplitError(f"{path}: video list not found")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        if "filename" not in header or "label" not in header:
            raise SplitError(f"{path}: needs 'filename' and 'label' columns, has {header}")
        rows = tuple((row["filename"].strip(), row["label"].strip()) for row in reader)
    return rows


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
    stages = {
        name: StageSplit(
            name=name,
            classes=read_class_list(class_dir / f"{name}.txt"),
            videos=read_video_list(_video_list_path(video_dir, name)),
        )
        for name in STAGE_SPLITS
    }
    stages = {
        n: checked_stage(s, class_dir / f"{n}.txt", _video_list_path(video_dir, n), SplitError)
        for n, s in stages.items()
    }
    return Splits(stages=stages, source=str(class_dir))


def _stem_key(video_id: str) -> str:
    return PurePosixPath(video_id).stem


def _path_key(video_id: str) -> str:
    path = PurePosixPath(video_id)
    return str(path.with_suffix("")) if path.suffix else str(path)


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


def match_videos(rows: Sequence[tuple[str, str]], cache_ids: Sequence[str]) -> VideoMatch:
    """Match split ``(filename, label)`` rows to cache video ids.

    A split filename matches, in order of preference: a cache id equal to it; a cache id equal to it without
    the file extension (``Class/v_x_g01_c01.avi`` for ``Class/v_x_g01_c01``); a cache id whose file stem
    equals it (``v_x_g01_c01``), only when that stem is unique in the cache. A stem shared by two cache
    videos is reported as ambiguous, never resolved by guessing.
    """
    exact = set(cache_ids)
    by_path: dict[str, str] = {}
    by_stem: dict[str, list[str]] = {}
    for vid in cache_ids:
        by_path.setdefault(_path_key(vid), vid)
        by_stem.setdefault(_stem_key(vid), []).append(vid)
    ids, labels, missing, ambiguous = [], [], [], []
    for filename, label in rows:
        if filename in exact:
            ids.append(filename)
        elif filename in by_path:
            ids.append(by_path[filename])
        elif len(by_stem.get(filename, [])) == 1:
            ids.append(by_stem[filename][0])
        elif filename in by_stem:
            ambiguous.append(filename)
            continue
        else:
            missing.append(filename)
            continue
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

    for cls in seen:
        rest, test = cut(class_videos[cls], test_fraction)
        train, val = cut(rest, val_fraction)
        rows["stage_1_train"] += [(v, cls) for v in train]
        rows["stage_1_val_seen"] += [(v, cls) for v in val]
        rows["stage_2_test_seen"] += [(v, cls) for v in test]
    for cls in val_unseen:
        val, test = cut(class_videos[cls], test_fraction)
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
