"""Table-2-style method comparison on benchmark-shaped synthetic data, with wall time per method and protocol stage.

Usage: python bench/methods.py [--benchmark ucf] [--seeds 0] [--epochs 50] [--methods all] [--cache C] [--keep DIR]
       [--threads 1]

A cache shaped like the benchmark (``avzsl-synth``: its videos, classes, released fastText class embeddings and
512-d synthetic features; UCF-GZSL size by default) is built in a temporary folder unless ``--cache`` names one.
Every registered method the cache can feed (``avzsl-sweep --methods`` planning: both presets of
coordinate_generalize, ``skipped: reason`` rows for the others) is trained once per seed through the real
``avzsl-train`` code path on the benchmark's split files, on the CPU. The printed Markdown table gives, per method,
the test S/U/H/ZSL (x100, mean ± std over seeds), and the mean wall seconds of

- stage 1: training plus the per-epoch validation (sum of the epochs' recorded seconds),
- stage 2: retraining on stage_2_train for e* epochs,
- rest: everything else in the avzsl-train call (cache and split loading, checkpoints, test evaluation),
- total: the whole avzsl-train call, also as a ratio to the ce_probe baseline measured in the same run.

An untimed 1-epoch ce_probe run comes first, so that one-off costs of the process (imports, cold file caches) are
not charged to the first method.

No method is tuned: every one runs with its registered defaults (coordinate_generalize also with ``--preset
paper``). Synthetic numbers test the pipeline and compare methods on one data generator; they are not the paper's.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.sweep.methods import method_table, parse_methods, skip_reason
from avzsl.pipeline.sweep.plan import plan_sweep, run_record
from avzsl.pipeline.sweep.stats import format_cell, mean_std
from avzsl.pipeline.synth.benchmark import BenchmarkSynthSpec, write_benchmark_cache

BASELINE = "ce_probe"
METRICS = ("S", "U", "H", "ZSL")


def machine_state() -> str:
    """CPU count, load average, torch threads: the context every wall time here depends on."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), load average "
            f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min), torch {torch.__version__} with "
            f"{torch.get_num_threads()} thread(s)")


def run_bench(cache: Path, benchmark: str, seeds: list[int], epochs: int, methods: str, out: Path) -> str:
    """Train every feedable method per seed into ``out``; returns the Markdown table with a header."""
    specs = parse_methods(methods)
    skipped = {s.label: r for s in specs if (r := skip_reason(s, cache)) is not None}
    runs = plan_sweep(False, [], seeds, [s for s in specs if s.label not in skipped])
    records, totals = [], {}
    # One untimed 1-epoch run first: the first avzsl-train call of a process also pays for imports, the registry's
    # method modules and cold file caches, which would otherwise be charged to whichever method runs first.
    warm = ["--cache", str(cache), "--benchmark", benchmark, "--out", str(out / "warm-up"), "--method", BASELINE,
            "--epochs", "1", "--device", "cpu"]
    with contextlib.redirect_stdout(io.StringIO()):
        cli_train.main(warm)
    state_before = machine_state()
    for i, run in enumerate(runs, 1):
        argv = ["--cache", str(cache), "--benchmark", benchmark, "--out", str(out / run.name), "--seed",
                str(run.seed), *run.train_args, "--epochs", str(epochs), "--device", "cpu"]
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli_train.main(argv)
        totals[run.name] = time.perf_counter() - started
        sys.stderr.write(f"[{i}/{len(runs)}] {run.name}: exit {code}, {totals[run.name]:.1f} s\n")
        records.append(run_record(out, run, "trained" if code == 0 else "failed"))
        if code == 0:
            records[-1]["seconds"]["total"] = totals[run.name]
    rows = method_table(records, specs, skipped)
    total_of = {row["method"]: mean_std([r["seconds"]["total"] for r in records
                                         if r.get("key") == row["method"] and "metrics" in r])["mean"]
                for row in rows if row["status"] != "skipped"}
    base = total_of.get(BASELINE)
    lines = [
        f"Methods on avzsl-synth {benchmark} ({len(seeds)} seed(s): {', '.join(map(str, seeds))}; {epochs} stage-1 "
        f"epochs; CPU), {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"machine before: {state_before}",
        f"machine after:  {machine_state()}",
        "",
        "| method | S | U | H | ZSL | e* | stage 1 s | stage 2 s | rest s | total s | total / ce_probe | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["status"] == "skipped":
            lines.append(f"| {row['method']} | - | - | - | - | - | - | - | - | - | - | skipped: {row['reason']} |")
            continue
        n = row["n"]
        done = [r for r in records if r.get("key") == row["method"] and "metrics" in r]
        cells = [format_cell(row[k], n) for k in METRICS]
        if n == 0:
            lines.append(f"| {row['method']} | {' | '.join(cells)} | - | - | - | - | - | - | failed |")
            continue
        total = total_of[row["method"]]
        rest = total - row["stage1_seconds"] - row["stage2_seconds"]
        epoch = "/".join(str(r["metrics"]["epoch"]) for r in done)
        ratio = f"{total / base:.2f}" if base else "-"
        note = f"failed seed(s): {', '.join(map(str, row['missing_seeds']))}" if row["missing_seeds"] else ""
        lines.append(f"| {row['method']} | {' | '.join(cells)} | {epoch} | {row['stage1_seconds']:.1f} | "
                     f"{row['stage2_seconds']:.1f} | {rest:.1f} | {total:.1f} | {ratio} | {note} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", default="ucf", choices=("ucf", "activitynet", "vggsound"))
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--epochs", type=int, default=50, help="stage-1 epochs (avzsl-train default 50)")
    parser.add_argument("--methods", default="all", help="all or NAME[:PRESET],... as for avzsl-sweep --methods")
    parser.add_argument("--cache", type=Path, default=None, help="an existing avzsl-synth cache of --benchmark")
    parser.add_argument("--windows", type=int, default=0, help="per-window features in the generated cache (TCAF)")
    parser.add_argument("--keep", type=Path, default=None, help="write the runs here instead of a temporary folder")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    with tempfile.TemporaryDirectory(prefix="avzsl-bench-methods-") as tmp:
        cache = args.cache
        if cache is None:
            cache = Path(tmp) / "cache"
            write_benchmark_cache(cache, BenchmarkSynthSpec(benchmark=args.benchmark, windows=args.windows))
        out = args.keep or Path(tmp) / "runs"
        sys.stdout.write(run_bench(cache, args.benchmark, seeds, args.epochs, args.methods, out))


if __name__ == "__main__":
    main()
