"""``avzsl-sweep``: the method table (Table 2), the loss ablation (Table 3), the mask-proportion sweep (Fig. 2)
and multi-seed runs.

Every run is an ordinary ``avzsl-train`` run directory under ``--out`` (layout in :mod:`avzsl.pipeline.sweep.plan`);
re-running the same command resumes interrupted runs and skips finished ones, then rewrites ``summary.json`` and
prints mean ± std over seeds. This module parses the options; the engine is :mod:`avzsl.pipeline.sweep.runner`, which
trains each run through :func:`avzsl.pipeline.cli.train.main`, handed to it here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avzsl.data_manifests import BENCHMARKS
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.cli.errors import report_user_error, user_errors
from avzsl.pipeline.cli.helptext import HelpFormatter, add_version_option
from avzsl.pipeline.cli.logs import setup_logging


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from exc


def _float_list(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avzsl-sweep",
        description=(
            "Run avzsl-train for each loss variant (--ablation: cls, cls+kd, cls+kd+mask; Table 3), each mask "
            "proportion (--rho; Fig. 2) and each seed (--seeds) into OUT/ablation-<variant>-seed<S>/ and "
            "OUT/rho-<rho>-seed<S>/; or each registered method (--methods; Table 2) into OUT/method-<name>-seed<S>/ "
            "with the table in OUT/methods.md and OUT/methods.json; with none of them, the default configuration per "
            "seed into OUT/default-seed<S>/. Options after '--' go to every avzsl-train run (e.g. -- --epochs 50 "
            "--device cuda). Finished runs are skipped, interrupted ones resumed; OUT/summary.json gets mean ± std "
            "over seeds."
        ),
        formatter_class=HelpFormatter,
        epilog="examples: avzsl-sweep --cache C --benchmark ucf --out sweeps/ucf --ablation --rho 0,0.1,0.2,0.3,0.4 "
        "--seeds 0,1,2 -- --device cuda; avzsl-sweep --cache C --benchmark ucf --out sweeps/table2 --methods all "
        "--seeds 0,1,2",
    )
    parser.add_argument("--cache", required=True, type=Path, help="feature cache directory")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--splits", type=Path, help="split folder in the reference format")
    where.add_argument("--benchmark", choices=BENCHMARKS, help="built-in benchmark splits")
    parser.add_argument("--out", required=True, type=Path, help="sweep directory (one run directory per run)")
    parser.add_argument("--ablation", action="store_true", help="train the three loss variants of Table 3")
    parser.add_argument(
        "--rho", type=_float_list, default=[], help="comma-separated mask proportions, e.g. 0,0.1,0.2,0.3,0.4"
    )
    parser.add_argument(
        "--methods", default=None, metavar="all|NAME[:PRESET],...",
        help="train these registered methods (avzsl-train --list-methods; coordinate_generalize:paper for its paper "
        "preset) once per seed; 'all' = every method the cache can feed (both coordinate_generalize presets); the "
        "others are listed as 'skipped: reason'",
    )
    parser.add_argument("--seeds", type=_int_list, default=[42], help="comma-separated seeds, e.g. 0,1,2")
    parser.add_argument("--dry-run", action="store_true", help="list the planned runs and their status only")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    add_version_option(parser)
    return parser


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """Split the command line at the first ``--`` into the sweep's options and the extra avzsl-train options."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns 0 when every run finished, 1 when some failed, 2 on a user error."""
    own, extra = split_argv(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(own)
    args.out.mkdir(parents=True, exist_ok=True)
    log_file = args.out / "sweep.log"
    setup_logging(log_file, verbose=args.verbose)
    from avzsl.pipeline.sweep.runner import (  # here, not at the top: it imports torch; --help must stay cheap
        SweepRequest,
        dry_run_text,
        outcome_text,
        plan_request,
        run_sweep,
    )

    def train(train_argv: list[str]) -> int:
        """One avzsl-train run, in-process (the engine's ``train`` callable)."""
        code = cli_train.main(train_argv)
        # avzsl-train points the log handlers at the run's train.log; take them back.
        setup_logging(log_file, verbose=args.verbose)
        return code

    request = SweepRequest(
        cache=args.cache, splits=args.splits, benchmark=args.benchmark, out=args.out, ablation=args.ablation,
        rhos=list(args.rho), methods=args.methods, seeds=list(args.seeds), extra=list(extra),
    )
    try:
        plan = plan_request(request)
        if args.dry_run:
            sys.stdout.write(dry_run_text(request, plan))
            return 0
        outcome = run_sweep(request, plan, train)
    except user_errors() as exc:
        return report_user_error(exc)
    sys.stdout.write(outcome_text(outcome))
    return 1 if outcome.failed else 0


if __name__ == "__main__":
    sys.exit(main())
