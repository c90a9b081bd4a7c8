"""``avzsl-demo``: the whole pipeline on a generated audio-visual world, on CPU, in a few minutes.

Steps (each resumable, so an interrupted demo continues where it stopped):
1. generate real H.264 + AAC videos of 16 colour/sound classes (``DIR/videos``);
2. write a split folder in the benchmark format (8 seen, 4 validation-unseen, 4 test-unseen classes);
3. ``avzsl-extract`` with RANDOM SeLaVi weights (no download needed; the official checkpoint gives real features);
4. ``avzsl-train`` (two-stage protocol), then ``avzsl-evaluate``; chance levels are printed for comparison.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from avzsl.pipeline.helptext import HelpFormatter, add_version_option
from avzsl.pipeline.logs import setup_logging

_logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avzsl-demo",
        description=(
            "Run generate -> extract -> train -> evaluate on a built-in procedural audio-visual world (16 classes "
            "named <colour>_<sound>; the test classes are unseen colour/sound pairs). Uses random encoder weights, "
            "so it tests the pipeline end to end without downloads."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="working folder")
    parser.add_argument("--videos-per-class", type=int, default=6, help="generated videos per class")
    parser.add_argument("--epochs", type=int, default=30, help="stage-1 training epochs")
    parser.add_argument("--workers", type=int, default=1, help="decoding worker processes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated world and of training")
    add_version_option(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the first failing stage's exit code, or 0."""
    args = build_parser().parse_args(argv)
    setup_logging()
    from avzsl.pipeline import cli_evaluate, cli_extract, cli_train
    from avzsl.pipeline.demo_world import demo_classes, generate_demo_videos
    from avzsl.pipeline.splits import write_protocol_splits

    out: Path = args.out
    write = sys.stdout.write
    write(f"[1/4] generating demo videos in {out / 'videos'}\n")
    videos = generate_demo_videos(out / "videos", args.videos_per_class, seed=args.seed)
    groups = demo_classes()
    write_protocol_splits(
        out / "splits", videos, groups.seen, groups.val_unseen, groups.test_unseen, seed=args.seed, val_fraction=0.2
    )
    write(
        f"      {len(groups.all)} classes: seen {', '.join(groups.seen)}\n"
        f"      validation-unseen {', '.join(groups.val_unseen)}\n"
        f"      test-unseen {', '.join(groups.test_unseen)}\n"
    )
    write("[2/4] extracting features (RANDOM SeLaVi weights: pipeline demo, not real SeLaVi features)\n")
    code = cli_extract.main(
        [
            "--videos",
            str(out / "videos"),
            "--out",
            str(out / "cache"),
            "--random-weights",
            "--workers",
            str(args.workers),
            "--batch-size",
            "4",
            "--shard-size",
            "32",
        ]
    )
    if code:
        return code
    write("[3/4] training (two-stage protocol)\n")
    train_args = ["--cache", str(out / "cache"), "--splits", str(out / "splits"), "--out", str(out / "run")]
    # Random encoder weights give features with a large common offset: standardize them (see --standardize-features).
    options = ["--epochs", str(args.epochs), "--batch-size", "64", "--batches-per-epoch", "10"]
    options += ["--seed", str(args.seed)]
    code = cli_train.main([*train_args, *options, "--standardize-features"])
    if code:
        return code
    write("[4/4] evaluating on the test split (seen classes + unseen colour/sound pairs)\n")
    code = cli_evaluate.main(["--run", str(out / "run")])
    if code:
        return code
    n_all = len(groups.seen) + len(groups.val_unseen) + len(groups.test_unseen)
    write(
        f"chance level: S and U {100 / n_all:.2f} (1 of {n_all} candidates), "
        f"ZSL {100 / len(groups.test_unseen):.2f} (1 of {len(groups.test_unseen)})\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
