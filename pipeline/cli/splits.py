"""``avzsl-splits``: write a two-stage GZSL split folder for a feature cache, from class lists or ratios.

The folder is in the reference format that ``avzsl-train --splits`` reads (``docs/splits.md``); the videos of each
class are divided by :func:`avzsl.pipeline.data.splits.write_protocol_splits`, the same code the demo uses.
"""

from __future__ import annotations

import argparse
import csv
import logging
import random
import sys
from pathlib import Path

from avzsl.pipeline.cli.errors import report_user_error, user_errors
from avzsl.pipeline.cli.helptext import HelpFormatter, add_version_option
from avzsl.pipeline.cli.logs import setup_logging
from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.data.class_names import RULE, checked_name_list, class_key, shown
from avzsl.pipeline.data.splits import STAGE_SPLITS, write_protocol_splits

_logger = logging.getLogger(__name__)


def _class_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _ratio(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"a ratio must be strictly between 0 and 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avzsl-splits",
        description=(
            "Write a split folder (stage_*.txt + stage_*.csv, see docs/splits.md) for the classes of a feature "
            "cache: test-unseen classes are never trained on; validation-unseen classes choose the epoch and the "
            "calibration in stage 1 and become seen (trained on) in stage 2; the rest are seen. Give the unseen "
            "classes by name (--unseen, --val-unseen) or as a share of the classes (--unseen-ratio, picked with "
            "--seed)."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--cache", required=True, type=Path, help="feature cache written by avzsl-extract/import")
    parser.add_argument("--out", required=True, type=Path, help="split folder to write")
    unseen = parser.add_mutually_exclusive_group(required=True)
    unseen.add_argument("--unseen", type=_class_list, help='test-unseen classes, comma-separated ("drum,violin")')
    unseen.add_argument("--unseen-ratio", type=_ratio, help="share of the classes that are test-unseen, e.g. 0.2")
    val = parser.add_mutually_exclusive_group()
    val.add_argument(
        "--val-unseen",
        type=_class_list,
        help="validation-unseen classes, comma-separated (default: as many as test-unseen, picked with --seed)",
    )
    val.add_argument("--val-unseen-ratio", type=_ratio, help="share of the classes that are validation-unseen")
    parser.add_argument("--seed", type=int, default=0, help="seed of the class picks and of the per-class video split")
    parser.add_argument(
        "--val-fraction", type=_ratio, default=0.15, help="share of a seen class's videos in stage_1_val_seen"
    )
    parser.add_argument(
        "--test-fraction",
        type=_ratio,
        default=0.15,
        help="share of a seen or validation-unseen class's videos held out for stage_2_test_seen",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the stage files of an existing --out")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    add_version_option(parser)
    return parser


def cache_class_videos(cache: Path) -> dict[str, list[str]]:
    """Video ids per class of a finalized cache (from ``index.csv``); unlabeled videos are left out.

    Raises:
        UserError: not a cache, not finalized, or no labeled video.
    """
    if not (cache / "cache.json").is_file():
        raise UserError(f"{cache}: not an avzsl feature cache (no cache.json)")
    index = cache / "index.csv"
    if not index.is_file():
        raise UserError(f"{index}: not found; the cache is not finalized (rerun avzsl-extract with the same arguments)")
    classes: dict[str, list[str]] = {}
    unlabeled = 0
    with index.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["class_name"]:
                classes.setdefault(row["class_name"], []).append(row["video_id"])
            else:
                unlabeled += 1
    if unlabeled:
        _logger.warning("%d unlabeled video(s) of %s are left out of the splits", unlabeled, cache)
    if not classes:
        raise UserError(f"{cache}: holds no labeled video (a split needs classes)")
    return classes


def choose_classes(
    classes: list[str],
    unseen: list[str] | None,
    unseen_ratio: float | None,
    val_unseen: list[str] | None,
    val_unseen_ratio: float | None,
    seed: int,
) -> tuple[list[str], list[str], list[str]]:
    """``(seen, val_unseen, test_unseen)`` class lists (each in cache order).

    Named classes follow the class-name rule (:mod:`avzsl.pipeline.data.class_names`) and are matched after NFC
    normalization and case folding; ratios pick ``round(ratio * C)`` classes (at least 1) at random.

    Raises:
        UserError: an unknown or repeated class, overlapping lists, or fewer than one class left in a group.
    """
    by_key = {class_key(c): c for c in classes}
    if len(by_key) < len(classes):
        clash = sorted(shown(c) for c in classes if [class_key(d) for d in classes].count(class_key(c)) > 1)
        raise UserError(f"the cache spells a class two ways ({RULE}): {clash}; extract it again with this version")
    rng = random.Random(seed)

    def named(names: list[str], option: str) -> list[str]:
        # The class-name rule (NFC, no control characters, no class twice), then a match by class_key.
        names = checked_name_list([(n, f"item {k}") for k, n in enumerate(names, start=1)], option)
        unknown = [n for n in names if class_key(n) not in by_key]
        if unknown:
            raise UserError(f"{option}: not classes of the cache: {unknown} (it has {sorted(classes)[:10]} ...)")
        return [by_key[class_key(n)] for n in names]

    def picked(ratio: float, pool: list[str]) -> list[str]:
        k = max(1, round(ratio * len(classes)))
        if k >= len(pool):
            raise UserError(f"a ratio of {ratio} asks for {k} of the {len(pool)} classes left; lower it")
        return rng.sample(pool, k)

    test = named(unseen, "--unseen") if unseen is not None else picked(float(unseen_ratio), sorted(classes))
    rest = [c for c in sorted(classes) if c not in test]
    if val_unseen is not None:
        val = named(val_unseen, "--val-unseen")
        overlap = sorted(set(val) & set(test))
        if overlap:
            raise UserError(f"--val-unseen and the test-unseen classes overlap: {overlap}")
    elif val_unseen_ratio is not None:
        val = picked(val_unseen_ratio, rest)
    else:
        if len(test) >= len(rest):
            raise UserError(f"{len(test)} test-unseen classes leave too few of {len(classes)} for validation and seen")
        val = rng.sample(rest, len(test))
    seen = [c for c in classes if c not in test and c not in val]
    if not seen:
        raise UserError("no seen class left: fewer unseen classes are needed")
    order = {c: i for i, c in enumerate(classes)}
    return seen, sorted(val, key=order.get), sorted(test, key=order.get)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 2 user error)."""
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)

    try:
        if args.out.exists() and any(args.out.glob("stage_*")) and not args.overwrite:
            raise UserError(f"{args.out}: already holds stage files; pass --overwrite to replace them")
        class_videos = cache_class_videos(args.cache)
        classes = sorted(class_videos)
        seen, val, test = choose_classes(
            classes, args.unseen, args.unseen_ratio, args.val_unseen, args.val_unseen_ratio, args.seed
        )
        few = [c for c in [*seen, *val] if len(class_videos[c]) < 3]
        if few:
            _logger.warning(
                "%d class(es) have fewer than 3 videos, so none is held out for validation or test: %s",
                len(few),
                few[:10],
            )
        out = write_protocol_splits(
            args.out, class_videos, seen, val, test, args.seed, args.val_fraction, args.test_fraction
        )
    except user_errors() as exc:
        return report_user_error(exc)
    sys.stdout.write(f"split folder {out}: {len(seen)} seen, {len(val)} validation-unseen, {len(test)} test-unseen\n")
    for stage in STAGE_SPLITS:
        with (out / f"{stage}.csv").open(encoding="utf-8") as f:
            rows = sum(1 for _ in f) - 1
        classes_in = len((out / f"{stage}.txt").read_text(encoding="utf-8").splitlines())
        sys.stdout.write(f"  {stage:<20} {classes_in:>4} classes {rows:>6} videos\n")
    sys.stdout.write(f"  validation-unseen: {', '.join(val)}\n  test-unseen:       {', '.join(test)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
