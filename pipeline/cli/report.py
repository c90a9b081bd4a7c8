"""``avzsl-report``: figures (paper Fig. 2/3, per-class accuracy, training curves) and a report of a run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avzsl.data_manifests import BENCHMARKS
from avzsl.pipeline.cli.errors import report_user_error, user_errors
from avzsl.pipeline.cli.helptext import HelpFormatter, add_version_option
from avzsl.pipeline.cli.logs import setup_logging
from avzsl.pipeline.core.errors import InvalidValueError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avzsl-report",
        description=(
            "Write PNG figures plus report.md and report.html for a finished avzsl-train run: t-SNE of original vs "
            "learned audio/visual features of unseen test classes (paper Fig. 3), per-class test accuracy, stage-1 "
            "validation curves with e* and gamma*, training losses; with --sweep, the method table of a --methods "
            "sweep (Table 2 layout), the ablation table (Table 3 layout, paper numbers beside ours) and H against "
            "the mask proportion (Fig. 2). With --sweep and no --run, only the sweep's tables (into SWEEP/report by "
            "default). Figures need the [report] extra (matplotlib, scikit-learn)."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--run", type=Path, default=None,
                        help="finished run directory written by avzsl-train (required unless --sweep is given)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: RUN/report or SWEEP/report)")
    parser.add_argument("--sweep", type=Path, default=None, help="avzsl-sweep output folder to include")
    parser.add_argument("--tsne-classes", type=int, default=5, help="unseen test classes in the t-SNE figure")
    parser.add_argument(
        "--classes",
        default=None,
        help="comma-separated unseen classes for the t-SNE figure instead of the first N by name (paper Fig. 3 "
        "on UCF: BandMarching,CuttingInKitchen,PlayingSitar,ShavingBeard,WritingOnBoard)",
    )
    parser.add_argument("--max-points", type=int, default=300, help="at most this many videos in the t-SNE figure")
    parser.add_argument("--tsne-iter", type=int, default=1000, help="t-SNE iterations (>= 250)")
    parser.add_argument(
        "--benchmark",
        choices=BENCHMARKS,
        default=None,
        help="benchmark for the paper's numbers when the run used --splits (default: the run's or sweep's)",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    add_version_option(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 2 user error)."""
    args = build_parser().parse_args(argv)
    setup_logging(None, verbose=args.verbose)
    from avzsl.pipeline.report.build import build_report, build_sweep_report  # imports torch: --help stays cheap

    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    try:
        if args.run is None:
            if args.sweep is None:
                raise InvalidValueError("avzsl-report needs --run RUN, --sweep SWEEP_DIR, or both")
            result = build_sweep_report(args.sweep, args.out, benchmark=args.benchmark)
            sys.stdout.write(result.markdown.read_text(encoding="utf-8"))
        else:
            result = build_report(
                args.run,
                args.out,
                tsne_classes=args.tsne_classes,
                max_points=args.max_points,
                sweep_dir=args.sweep,
                class_names=classes,
                benchmark=args.benchmark,
                tsne_iter=args.tsne_iter,
            )
    except user_errors() as exc:
        return report_user_error(exc)
    for path in (*result.figures, result.markdown, result.html):
        sys.stdout.write(f"{path}\n")
    for warning in result.warnings:
        sys.stdout.write(f"WARNING: {warning}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
