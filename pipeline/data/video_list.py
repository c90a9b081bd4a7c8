"""Which videos to extract: a class-per-folder tree (UCF101 style) or a manifest CSV, with stable video ids.

A video's id is its path relative to ``--videos`` in POSIX form, extension included (``Class/v_x_g01_c01.avi``):
never the bare file stem, since two classes can both hold ``000.mp4``. Paths from a manifest must stay inside
``--videos`` unless explicitly allowed.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.core.filenames import escape_name
from avzsl.pipeline.data.class_names import checked_name_list, class_key, shown_path, unique_class_names

_logger = logging.getLogger(__name__)

# Containers FFmpeg commonly holds video in. A folder tree is filtered by extension so that stray notes or
# thumbnails are not probed; a file with a video extension but other content is still recorded as unreadable.
VIDEO_EXTENSIONS = frozenset(
    [
        ".mp4",
        ".m4v",
        ".mov",
        ".avi",
        ".mkv",
        ".webm",
        ".mpg",
        ".mpeg",
        ".m2v",
        ".ts",
        ".mts",
        ".m2ts",
        ".flv",
        ".wmv",
        ".3gp",
        ".ogv",
        ".vob",
        ".mxf",
        ".dv",
        ".gif",
    ]
)


# The class name recorded for a video of an unlabeled (flat) folder: features only, no class to train on.
UNLABELED = ""


@dataclass(frozen=True)
class VideoEntry:
    """One input video.

    Attributes:
        video_id: stable id (relative POSIX path).
        path: absolute path of the file.
        class_name: class label; :data:`UNLABELED` (empty) for a video of a flat folder without classes.
    """

    video_id: str
    path: str
    class_name: str


def _safe_relative(root: Path, path: Path, allow_outside: bool, origin: str) -> str:
    """The id of ``path`` relative to ``root``; refuses paths that escape ``root`` (``..`` or symlinks)."""
    resolved_root = root.resolve()
    candidate = path if path.is_absolute() else root / path
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as exc:  # RuntimeError: symlink loop on older Pythons
        raise UserError(f"{origin}: cannot resolve {candidate} ({exc})") from exc
    lexical = Path(os.path.normpath(candidate))
    inside = resolved.is_relative_to(resolved_root) and lexical.is_relative_to(Path(os.path.normpath(root)))
    if not inside and not allow_outside:
        raise UserError(
            f"{origin}: {path} points outside {root}; pass --allow-outside to read videos from other folders"
        )
    if lexical.is_relative_to(Path(os.path.normpath(root))):
        return lexical.relative_to(Path(os.path.normpath(root))).as_posix()
    return lexical.as_posix()


def discover_folder(root: Path) -> list[VideoEntry]:
    """Videos in ``root/<ClassName>/...`` (nested folders allowed; the first level is the class).

    A flat folder (videos directly in ``root``, no class folder holding any) is accepted as unlabeled: every video
    gets the class :data:`UNLABELED`, for feature extraction and prediction only. Symlinked folders are not
    followed (a symlink loop cannot hang the walk); symlinked files are kept and probed like any file.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: videos folder not found")
    skipped = 0
    found: dict[Path, list[tuple[str, str]]] = {}  # class folder -> (video id, path) of its videos
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if path.suffix.lower() not in VIDEO_EXTENSIONS:
                    skipped += 1
                    continue
                # A name that is not UTF-8 keeps its bytes in ``path`` (FFmpeg opens it) and gets an escaped id.
                video_id = escape_name(path.relative_to(root).as_posix())
                found.setdefault(class_dir, []).append((video_id, str(path.absolute())))
    # Class names in NFC; a folder name the rule refuses, or two folders of one class (Café in NFC and in NFD, Dog
    # and dog), stop the run here, before anything is extracted. Folders without videos are no classes: not checked.
    folders = ((escape_name(d.name), shown_path(escape_name(str(d)))) for d in found)
    names = checked_name_list(folders, f"class folders of {root}")
    entries = [
        VideoEntry(video_id, path, class_name)
        for videos, class_name in zip(found.values(), names, strict=True)
        for video_id, path in videos
    ]
    loose = sorted(p.name for p in root.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    if loose and not entries:
        _logger.info("%s has no class folders: its %d video(s) are extracted as unlabeled", root, len(loose))
        return [VideoEntry(escape_name(name), str((root / name).absolute()), UNLABELED) for name in loose]
    if loose:
        _logger.warning(
            "%d video file(s) directly in %s have no class folder and are ignored (e.g. %s); use --manifest",
            len(loose),
            root,
            loose[0],
        )
    if skipped:
        _logger.info("ignored %d file(s) without a video extension under %s", skipped, root)
    if not entries:
        raise UserError(
            f"{root}: no video files found, neither in class folders ({root}/<ClassName>/<video>) nor directly in it"
        )
    return entries


def read_manifest(path: Path, root: Path, allow_outside: bool = False) -> list[VideoEntry]:
    """Videos listed in a CSV with columns ``path`` (relative to ``root`` or absolute) and ``class_name``
    (``label`` is accepted too)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: manifest not found")
    try:
        # utf-8-sig: a byte-order mark (spreadsheet exports) is skipped; without one it reads plain UTF-8.
        with path.open(newline="", encoding="utf-8-sig") as f:
            return _read_manifest_rows(path, f, root, allow_outside)
    except UnicodeDecodeError as exc:
        bom = path.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff")
        what = "UTF-16 text" if bom else "not UTF-8 text"
        raise UserError(
            f"{path}: the manifest is {what} ({exc.reason} at byte {exc.start}); save it as UTF-8 and run again"
        ) from None
    except csv.Error as exc:  # e.g. NUL bytes: UTF-16 without a byte-order mark
        raise UserError(f"{path}: not a CSV manifest ({exc}); save it as UTF-8 CSV and run again") from None


def _read_manifest_rows(path: Path, f: Any, root: Path, allow_outside: bool) -> list[VideoEntry]:
    """The entries of an open manifest (``f``: text stream of ``path``)."""
    reader = csv.DictReader(f)
    header = reader.fieldnames or []
    label_column = "class_name" if "class_name" in header else "label" if "label" in header else None
    if "path" not in header or label_column is None:
        raise UserError(f"{path}: manifest needs columns 'path' and 'class_name' (or 'label'), has {header}")
    entries = []
    labels: list[tuple[str, str]] = []
    for line, row in enumerate(reader, start=2):
        rel, label = (row.get("path") or "").strip(), (row.get(label_column) or "").strip()
        if not rel or not label:
            raise UserError(f"{path}:{line}: empty path or class name")
        origin = f"{path}:{line}"
        video_id = _safe_relative(Path(root), Path(rel), allow_outside, origin)
        full = Path(rel) if Path(rel).is_absolute() else Path(root) / rel
        entries.append(VideoEntry(video_id, str(full.absolute()), label))
        labels.append((label, origin))
    # Labels in NFC; a label the rule refuses, or one class spelled two ways (Dog, dog), names its rows.
    normalized = {class_key(name): name for name in unique_class_names(labels, str(path))}
    entries = [VideoEntry(e.video_id, e.path, normalized[class_key(e.class_name)]) for e in entries]
    ids = [e.video_id for e in entries]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        raise UserError(f"{path}: videos listed more than once: {dupes[:5]}")
    if not entries:
        raise UserError(f"{path}: manifest lists no video")
    return sorted(entries, key=lambda e: e.video_id)
