"""The one rule for class names, applied wherever a class name enters avzsl (``docs/class_names.md``).

A class name is stored and compared in Unicode NFC: ``Café`` typed as one code point and as ``e`` plus a combining
accent (NFD, what macOS file systems hand back) is one name. A name is refused, with the folder, file or row that
gave it, when it is empty, has white space at either end, or holds a control or invisible format character
(Unicode categories Cc, Cf, Cs, Zl, Zp; the joiners U+200C and U+200D, which some scripts and emoji need, are
allowed). Two names that are equal after NFC and case folding (:func:`class_key`) are one class: a folder tree,
manifest, class list or candidate list that spells one class two ways is refused, naming both.

Text formats (manifest cells, split-file lines and cells, comma-separated lists) strip the white space around a
cell before the rule applies, as they always did; a folder name is taken as it is, so a folder `` Dog`` is refused
(the file system would keep `` Dog`` and ``Dog`` apart while every class list strips them to one name).

Entry points: :mod:`avzsl.pipeline.data.video_list` (class folders and manifests),
:mod:`avzsl.pipeline.data.splits` (split folders, via :func:`checked_stage`), ``avzsl-predict`` candidate lists
(:mod:`avzsl.pipeline.predict.ranking`) and ``avzsl-splits --unseen/--val-unseen``.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from avzsl.pipeline.core.errors import UserError

# Categories a class name may not hold: controls (tab, vertical tab, newline, ...), format characters (zero-width
# space, byte-order mark, direction marks), lone surrogates, and the line/paragraph separators that
# ``str.splitlines`` breaks a class list on.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_ALLOWED_FORMAT = frozenset({"\u200c", "\u200d"})  # zero-width non-joiner and joiner: part of some scripts' words

RULE = "class names are compared after Unicode NFC normalization and case folding"
# unicodedata has no names for control characters; these are the ones a file or folder name can pick up.
_CONTROL_NAMES = {"\t": "TAB", "\n": "LINE FEED", "\x0b": "VERTICAL TAB", "\x0c": "FORM FEED", "\r": "CARRIAGE RETURN"}


class ClassNameError(UserError):
    """A class name breaks the rule; the message names where it came from."""


def normalize_class_name(name: str) -> str:
    """``name`` in Unicode NFC (the form every class name is stored and compared in)."""
    return unicodedata.normalize("NFC", name)


def class_key(name: str) -> str:
    """The form two class names are compared in: NFC, case-folded, outer white space removed (``Dog``, ``dog`` and
    ``DOG`` are one class; so are ``Café`` typed as one code point and as ``e`` plus a combining accent)."""
    return normalize_class_name(name).strip().casefold()


def shown(name: str) -> str:
    """``name`` quoted for a message, with escapes where it is not plain printable NFC text (``'Cafe\\u0301'``), so
    two names that print alike are told apart."""
    if name.isprintable() and normalize_class_name(name) == name:
        return repr(name)
    return ascii(name)


def shown_path(path: str) -> str:
    """A folder or file name for a message: as it is when it prints plainly, else with escapes (``ascii``)."""
    return path if path.isprintable() and normalize_class_name(path) == path else ascii(path)


def class_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a class name, or None when it can."""
    if not name.strip():
        return "is empty"
    if name != name.strip():
        return "has white space at its start or end"
    for char in name:
        if unicodedata.category(char) in _REFUSED_CATEGORIES and char not in _ALLOWED_FORMAT:
            what = unicodedata.name(char, "") or _CONTROL_NAMES.get(char, "a control character")
            return f"holds the control or invisible character U+{ord(char):04X} ({what})"
    return None


def checked_class_name(name: str, origin: str, error: type[Exception] = ClassNameError) -> str:
    """``name`` in NFC, or ``error`` naming ``origin`` (a folder, ``file:line`` or option) when it breaks the rule."""
    normalized = normalize_class_name(name)
    problem = class_name_problem(normalized)
    if problem:
        raise error(f"{origin}: class name {shown(name)} {problem}; rename it (docs/class_names.md)")
    return normalized


def unique_class_names(
    names: Iterable[tuple[str, str]], what: str, error: type[Exception] = ClassNameError
) -> list[str]:
    """The distinct classes of labelled rows (a manifest names a class once per video).

    Args:
        names: each row's label with where it came from (``file:line``); a label repeated in the same spelling (NFC
            or NFD alike) is one class, a label spelled another way (``Dog``, ``dog``) is refused, naming both rows.
        what: what the names are, for the message (a file name).
        error: the exception type to raise (the caller's module error).

    Returns:
        The distinct names in NFC, in first-seen order.
    """
    first: dict[str, tuple[str, str]] = {}
    for name, origin in names:
        normalized = checked_class_name(name, origin, error)
        key = class_key(normalized)
        if key not in first:
            first[key] = (normalized, origin)
        elif first[key][0] != normalized:
            spelled, where = first[key]
            raise error(
                f"{what}: {origin} spells the class {shown(normalized)}, {where} spells it {shown(spelled)} ({RULE}); "
                "spell it one way"
            )
    return [normalized for normalized, _ in first.values()]


def checked_name_list(
    names: Iterable[tuple[str, str]], what: str, error: type[Exception] = ClassNameError
) -> list[str]:
    """A list of distinct classes (class folders, a class list, candidates): NFC, each valid, none twice in any
    spelling.

    Args:
        names: ``(name, origin)`` in list order; ``origin`` says where the name is (a folder, ``file:line``, option).
        what: the list, for the message (``"class folders of DIR"``, ``"--classes"``, a file name).
        error: the exception type to raise.
    """
    seen: dict[str, tuple[str, str]] = {}
    out: list[str] = []
    for name, origin in names:
        normalized = checked_class_name(name, f"{what}: {origin}", error)
        key = class_key(normalized)
        if key in seen:
            other, where = seen[key]
            # Two spellings that print alike (NFC and NFD) are told apart by their escapes.
            show = ascii if normalize_class_name(other) == normalized else shown
            raise error(
                f"{what}: {origin} ({show(name)}) and {where} ({show(other)}) are the same class ({RULE}); keep one"
            )
        seen[key] = (name, origin)
        out.append(normalized)
    return out


def checked_stage(stage: Any, class_file: Path, video_file: Path, error: type[Exception]) -> Any:
    """A split folder's stage split (``StageSplit``) with its class names and labels checked and in NFC.

    Class list names must be valid and distinct; every row's label must be valid (labels repeat, one per video, and
    may differ in case from the class list, as UCF's do). Labels are memoised: a VGGSound list has 90,000 rows of
    300 labels.
    """
    lines = getattr(stage, "class_lines", ()) or ()
    where = [f"line {lines[i]}" if i < len(lines) else f"class {i + 1}" for i in range(len(stage.classes))]
    try:
        classes = checked_name_list(zip(stage.classes, where, strict=True), str(class_file), error)
    except error as exc:  # name the split-folder rule, as the other split checks do (docs/splits.md)
        rule = "unique classes" if "are the same class" in str(exc) else "class names"
        raise error(f"{exc} [{rule}]") from exc
    labels: dict[str, str] = {}
    for filename, label in stage.videos:
        if label not in labels:
            labels[label] = checked_class_name(label, f"{video_file}: label of {filename!r}", error)
    videos = stage.videos
    if any(label != normalized for label, normalized in labels.items()):  # rare: only then rebuild the rows
        videos = tuple((filename, labels[label]) for filename, label in videos)
    return dataclasses.replace(stage, classes=tuple(classes), videos=videos)
