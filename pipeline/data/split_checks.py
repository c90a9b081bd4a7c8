"""Check a split folder against the invariants of ``docs/splits.md`` and against the cache it is used with.

A split folder that breaks the protocol does not fail by itself: a test-unseen class listed for stage-2 training,
a test video also in a training list, a label that disagrees with the video's class or an empty test split all
train and evaluate to numbers that are simply not true. :func:`validate_splits` refuses such a folder before
anything is trained or evaluated, with the file, the row (or class line) and the rule.

The rules (each problem message ends with the rule's name in brackets):

- ``unique classes``: no class list names a class twice, compared after Unicode NFC normalization and case folding
  (:func:`avzsl.pipeline.data.class_names.class_key`);
- ``class groups``: seen (``stage_1_train``, S1), validation-unseen (``stage_1_val_unseen``, V) and test-unseen
  (``stage_2_test_unseen``, T) classes are disjoint; ``stage_1_val_seen`` lists S1 classes only;
  ``stage_2_train`` lists exactly S1 + V; ``stage_2_test_seen`` lists S1 + V classes only;
- ``unambiguous names``: a row naming a video by bare file stem (or by id without extension) must mean one video
  among every input video the cache knows of, those that failed to extract included;
- ``labels``: a row's label is the class the cache recorded for that video (a video the cache holds as unlabeled
  takes the split's label);
- ``one split per video``: a cache video is used by at most one row of the three stage-1 lists and at most one row
  of the three stage-2 lists, and a stage-2 test video is in no stage-1 list;
- ``no empty evaluation split``: ``stage_1_val_seen``, ``stage_1_val_unseen``, ``stage_2_test_seen`` and
  ``stage_2_test_unseen`` each have at least one video the cache holds.

Only rows whose label is listed in their stage's class list count (the benchmarks' ``cls`` variant reuses the
``main`` video lists with shorter class lists); rows naming a video the cache lacks are skipped here and reported
by the protocol as missing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from avzsl.pipeline.data.class_names import class_key
from avzsl.pipeline.data.splits import SplitError, Splits, StageSplit, VideoResolver

_logger = logging.getLogger(__name__)

UNIQUE = "unique classes"
GROUPS = "class groups"
NAMES = "unambiguous names"
LABELS = "labels"
ONE_SPLIT = "one split per video"
NOT_EMPTY = "no empty evaluation split"

STAGE_1 = ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen")
STAGE_2 = ("stage_2_train", "stage_2_test_seen", "stage_2_test_unseen")
EVALUATION_SPLITS = ("stage_1_val_seen", "stage_1_val_unseen", "stage_2_test_seen", "stage_2_test_unseen")
_SHOWN = 3  # videos named in an ambiguity message


@dataclass(frozen=True)
class _Use:
    """One row of a video list that resolved to a cache video."""

    stage: StageSplit
    line: int


def _where(stage: StageSplit, line: int, kind: str) -> str:
    path = stage.video_file if kind == "row" else stage.class_file
    path = path or f"{stage.name}.{'csv' if kind == 'row' else 'txt'}"
    return f"{path}: {kind} {line}" if line else path


def _row(stage: StageSplit, line: int, filename: str, label: str) -> str:
    return f"{_where(stage, line, 'row')} ({filename!r}, {label!r})"


def _class_problems(splits: Splits) -> list[str]:
    """Rules ``unique classes`` and ``class groups``."""
    problems: list[str] = []
    keys: dict[str, dict[str, int]] = {}  # stage -> class key -> index in its list
    for name, stage in splits.stages.items():
        keys[name] = {}
        for i, cls in enumerate(stage.classes):
            key = class_key(cls)
            if key in keys[name]:
                first = keys[name][key]
                problems.append(
                    f"{_where(stage, stage.class_line(i), 'line')}: class {cls!r} is the class {stage.classes[first]!r}"
                    f" of line {stage.class_line(first)} again (class names are compared ignoring case and Unicode "
                    f"normalization) [{UNIQUE}]")
            else:
                keys[name][key] = i
    s1, v, t = keys["stage_1_train"], keys["stage_1_val_unseen"], keys["stage_2_test_unseen"]
    s = splits.stages

    def each(stage: str, test, why: str) -> None:  # noqa: ANN001 - a predicate on a class key
        for key, i in keys[stage].items():
            reason = test(key)
            if reason:
                problems.append(f"{_where(s[stage], s[stage].class_line(i), 'line')}: class {s[stage].classes[i]!r} "
                                f"{reason}: {why} [{GROUPS}]")

    each("stage_1_val_unseen", lambda k: "is also a stage_1_train class" if k in s1 else "",
         "a validation-unseen class must be unseen in stage 1")
    each("stage_2_test_unseen",
         lambda k: ("is also a stage_1_train class" if k in s1 else "is also a stage_1_val_unseen class" if k in v
                    else "is also a stage_2_train class" if k in keys["stage_2_train"] else ""),
         "a test-unseen class is never trained or validated on")
    each("stage_1_val_seen", lambda k: "is not a stage_1_train class" if k not in s1 else "",
         "stage_1_val_seen holds held-out videos of the seen classes only")
    each("stage_2_train", lambda k: "" if k in s1 or k in v or k in t else "is in neither stage_1_train nor "
         "stage_1_val_unseen", "stage_2_train lists exactly the stage_1_train and stage_1_val_unseen classes")
    each("stage_2_test_seen", lambda k: "" if k in s1 or k in v or k in t else "is in neither stage_1_train nor "
         "stage_1_val_unseen", "stage_2_test_seen holds test videos of stage-2 seen classes only")
    each("stage_2_test_seen", lambda k: "is a stage_2_test_unseen class" if k in t else "",
         "a test-unseen class is never among the seen classes")
    stage2 = keys["stage_2_train"]
    for source in ("stage_1_train", "stage_1_val_unseen"):
        for key, i in keys[source].items():
            if key not in stage2:
                problems.append(f"{_where(s['stage_2_train'], 0, 'line')}: lacks the {source} class "
                                f"{s[source].classes[i]!r}: stage_2_train lists exactly the stage_1_train and "
                                f"stage_1_val_unseen classes [{GROUPS}]")
    return problems


def _video_problems(splits: Splits, cache_classes: Mapping[str, str], known_ids: Sequence[str]) -> list[str]:
    """Rules ``unambiguous names``, ``labels``, ``one split per video`` and ``no empty evaluation split``."""
    resolver = VideoResolver(list(cache_classes), known_ids)
    names: list[str] = []
    labels: list[str] = []
    twice: list[str] = []
    uses: dict[str, dict[str, _Use]] = {"1": {}, "2": {}}  # stage number -> cache id -> first use
    found: dict[str, int] = {}
    for name in (*STAGE_1, *STAGE_2):
        stage = splits.stages[name]
        found[name] = 0
        for line, filename, label in stage.listed_rows():
            vid, candidates = resolver.resolve(filename)
            if candidates:
                shown = ", ".join(candidates[:_SHOWN]) + (", ..." if len(candidates) > _SHOWN else "")
                names.append(f"{_row(stage, line, filename, label)}: {filename!r} names {len(candidates)} input videos "
                             f"of the cache ({shown}); give the video id [{NAMES}]")
                continue
            if vid is None:
                continue
            found[name] += 1
            recorded = cache_classes[vid]
            if recorded and class_key(recorded) != class_key(label):
                labels.append(f"{_row(stage, line, filename, label)}: labelled {label!r}, but the cache holds {vid} as "
                              f"class {recorded!r} [{LABELS}]")
            group = uses[name[6]]
            if vid in group:
                first = group[vid]
                twice.append(f"{_row(stage, line, filename, label)}: video {vid} is also in "
                             f"{_where(first.stage, first.line, 'row')}: a video is in exactly one split of stage "
                             f"{name[6]} [{ONE_SPLIT}]")
            else:
                group[vid] = _Use(stage, line)
            if name in ("stage_2_test_seen", "stage_2_test_unseen") and vid in uses["1"]:
                first = uses["1"][vid]
                twice.append(f"{_row(stage, line, filename, label)}: test video {vid} is also in "
                             f"{_where(first.stage, first.line, 'row')}: a test video is never trained or validated on "
                             f"[{ONE_SPLIT}]")
    empty = []
    for name in EVALUATION_SPLITS:
        stage = splits.stages[name]
        if not found[name]:
            empty.append(f"{_where(stage, 0, 'row')}: no video of the cache in this split ({len(stage.videos)} row(s), "
                         f"{len(stage.listed_rows())} of listed classes); its metrics would be NaN or meaningless "
                         f"[{NOT_EMPTY}]")
    return names + labels + twice + empty


def check_splits(splits: Splits, cache_classes: Mapping[str, str], known_ids: Sequence[str] = ()) -> list[str]:
    """Every problem of a split folder used with a cache, one message each (empty when it is sound).

    Args:
        splits: the six stage splits.
        cache_classes: cache video id -> the class the cache recorded for it ("" for an unlabeled video).
        known_ids: ids of input videos the cache knows of but holds no features of (failed extractions).
    """
    return _class_problems(splits) + _video_problems(splits, cache_classes, known_ids)


def validate_splits(splits: Splits, cache_classes: Mapping[str, str], known_ids: Sequence[str] = ()) -> None:
    """Refuse a split folder that breaks a rule of this module (see :func:`check_splits`).

    Raises:
        SplitError: the first problem (file, row or line, rule), and how many there are in all; every problem is
            logged at debug level (``--verbose``).
    """
    problems = check_splits(splits, cache_classes, known_ids)
    if not problems:
        return
    for problem in problems:
        _logger.debug("split folder %s: %s", splits.source, problem)
    more = ""
    if len(problems) > 1:
        more = f" (and {len(problems) - 1} more problem(s) in {splits.source}; --verbose lists them)"
    raise SplitError(f"{problems[0]}{more}; docs/splits.md states the rules")
