"""``avzsl-evaluate``: report S, U, H and ZSL of a trained run on the test split."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from avzsl.pipeline.cli.errors import report_user_error, user_errors
from avzsl.pipeline.cli.helptext import HelpFormatter, add_version_option
from avzsl.pipeline.cli.logs import pick_device, setup_logging
from avzsl.pipeline.run.layout import METRICS_JSON


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avzsl-evaluate",
        description=(
            "Evaluate a run trained by avzsl-train on stage_2_test_seen + stage_2_test_unseen exactly as the AV-GZSL "
            "benchmarks define it: per-class top-1 accuracy macro-averaged over seen (S) and unseen (U) classes, "
            "H = 2SU/(S+U), ZSL = unseen accuracy with unseen candidates only, all x100. The calibration chosen on "
            "stage-1 validation is reused, never searched on test. Writes RUN/metrics.json."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--run", required=True, type=Path, help="run directory written by avzsl-train")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON instead of a table")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    add_version_option(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 2 user error)."""
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    from avzsl.pipeline.train.protocol import evaluate_run  # lazy: pulls in torch; --help stays cheap

    try:
        metrics = evaluate_run(args.run, device=pick_device(args.device))
    except user_errors() as exc:
        return report_user_error(exc)
    if args.json:
        sys.stdout.write(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        return 0
    sys.stdout.write(f"{'S':>8} {'U':>8} {'H':>8} {'ZSL':>8}\n")
    sys.stdout.write(f"{metrics['S']:8.2f} {metrics['U']:8.2f} {metrics['H']:8.2f} {metrics['ZSL']:8.2f}\n")
    gamma = metrics.get("gamma", metrics.get("beta", float("nan")))  # "beta" in files of the former format
    sys.stdout.write(
        f"epoch {metrics['epoch']}, calibration {gamma:.4g}, {metrics['num_test_videos']} test videos; "
        f"written to {args.run / METRICS_JSON}\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
