"""``avzsl-sweep``: the method table (Table 2), the loss ablation (Table 3), the mask-proportion sweep (Fig. 2)
and multi-seed runs.

Every run is an ordinary ``avzsl-train`` run directory under ``--out`` (layout in :mod:`avzsl.pipeline.sweep.plan`);
re-running the same command resumes interrupted runs and skips finished ones, then rewrites ``summary.json`` and
prints mean ± std over seeds.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
from pathlib import Path

from avzsl.pipeline.cli.helptext import HelpFormatter, add_version_option
from avzsl.pipeline.core.errors import USER_ERRORS, report_user_error
from avzsl.pipeline.core.logs import setup_logging

_logger = logging.getLogger(__name__)


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
    where.add_argument("--benchmark", choices=("ucf", "activitynet", "vggsound"), help="built-in benchmark splits")
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
    from avzsl.pipeline.cache import read_cache_info, weights_are_random
    from avzsl.pipeline.cli import train as cli_train
    from avzsl.pipeline.core.lock import DirectoryLock
    from avzsl.pipeline.run.layout import TRAIN_LOG, run_is_finished
    from avzsl.pipeline.sweep.methods import method_table, parse_methods, skip_reason, write_method_table
    from avzsl.pipeline.sweep.plan import (
        check_extra_args,
        format_tables,
        plan_sweep,
        run_record,
        write_summary,
    )

    specs = None
    skipped_methods: dict[str, str] = {}
    try:
        check_extra_args(extra, args.ablation, args.rho, methods=args.methods is not None)
        if args.methods is not None:
            if not args.cache.is_dir():
                raise ValueError(f"{args.cache}: --cache folder not found")
            specs = parse_methods(args.methods)
            for spec in specs:
                reason = skip_reason(spec, args.cache)
                if reason is not None:
                    skipped_methods[spec.label] = reason
                    _logger.warning("%s: skipped: %s", spec.label, reason)
        runnable = None if specs is None else [s for s in specs if s.label not in skipped_methods]
        runs = plan_sweep(args.ablation, args.rho, args.seeds, runnable)
        base = ["--cache", str(args.cache)]
        base += ["--splits", str(args.splits)] if args.splits else ["--benchmark", args.benchmark]
        if args.dry_run:
            for run in runs:
                state = "finished" if run_is_finished(args.out / run.name) else "to run"
                argv = [*base, "--out", str(args.out / run.name), "--seed", str(run.seed), *run.train_args, *extra]
                sys.stdout.write(f"{run.name}: {state}: avzsl-train {' '.join(argv)}\n")
            for label, reason in skipped_methods.items():
                sys.stdout.write(f"method {label}: skipped: {reason}\n")
            return 0
        with DirectoryLock(args.out, "sweep directory", name=".avzsl-sweep.lock"):
            records = []
            for i, run in enumerate(runs, 1):
                run_dir = args.out / run.name
                finished_before = run_is_finished(run_dir)
                _logger.info("[%d/%d] %s%s", i, len(runs), run.name, " (finished earlier)" if finished_before else "")
                train_argv = [*base, "--out", str(run_dir), "--seed", str(run.seed), *run.train_args, *extra]
                captured = io.StringIO()
                with contextlib.redirect_stdout(captured):
                    code = cli_train.main(train_argv)
                # avzsl-train points the log handlers at the run's train.log; take them back.
                setup_logging(log_file, verbose=args.verbose)
                if code != 0:
                    _logger.error("%s failed (exit %d); see %s", run.name, code, run_dir / TRAIN_LOG)
                    status = "failed"
                else:
                    status = "up to date" if finished_before else "trained"
                    _logger.info("%s: %s", run.name, captured.getvalue().strip())
                records.append(run_record(args.out, run, status))
            meta = {
                "cache": str(args.cache),
                "splits": str(args.splits) if args.splits else None,
                "benchmark": args.benchmark,
                "ablation": bool(args.ablation),
                "rhos": list(args.rho),
                "methods": None if specs is None else [spec.label for spec in specs],
                "skipped_methods": skipped_methods,
                "seeds": list(args.seeds),
                "extra_args": list(extra),
                "random_weights": weights_are_random(read_cache_info(args.cache)),
            }
            summary = write_summary(args.out, records, meta)
            if specs is not None:
                write_method_table(args.out, method_table(records, specs, skipped_methods), meta)
    except USER_ERRORS as exc:
        return report_user_error(exc)
    if specs is not None:
        sys.stdout.write((args.out / "methods.md").read_text())
    else:
        sys.stdout.write(format_tables(summary))
    failed = [r["dir"] for r in records if r["status"] == "failed"]
    skipped = sum(r["status"] == "up to date" for r in records)
    methods_text = f", {len(skipped_methods)} method(s) skipped" if skipped_methods else ""
    table_text = f", table in {args.out / 'methods.md'}" if specs is not None else ""
    sys.stdout.write(
        f"{len(records)} run(s): {skipped} up to date, {len(records) - skipped - len(failed)} trained, "
        f"{len(failed)} failed{methods_text}; summary in {args.out / 'summary.json'}{table_text}\n"
    )
    if failed:
        sys.stdout.write(f"failed: {', '.join(failed)}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
