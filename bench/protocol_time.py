"""Wall time of the full two-stage protocol of the default method at UCF, ActivityNet and VGGSound size (issue 18).

Usage: python bench/protocol_time.py [--sizes ucf,activitynet,vggsound] [--epochs 50] [--vggsound-epochs 50]
       [--seed 0] [--threads N]

For each size an ``avzsl-synth`` cache is written (the benchmark's real split files and class embeddings, synthetic
512-d features) and ``avzsl-train --benchmark SIZE`` runs with the defaults through the real CLI code path: stage 1
with per-epoch validation, stage 2 to e*, the test evaluation. The closed-form ``ridge`` baseline runs on the same
cache in the same process as the baseline of the ratio column (both timings share the machine's load). With fewer
``--vggsound-epochs`` than ``--epochs`` the VGGSound row also extrapolates the full protocol from the measured
seconds per epoch (stage 2 assumed to run to the last epoch: the worst case). Prints a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.synth.benchmark import BenchmarkSynthSpec, write_benchmark_cache


def train_seconds(benchmark: str, cache: Path, out: Path, options: list[str]) -> tuple[float, dict]:
    started = time.perf_counter()
    code = cli_train.main(["--benchmark", benchmark, "--cache", str(cache), "--out", str(out), "--device", "cpu",
                           *options])
    seconds = time.perf_counter() - started
    if code:
        raise SystemExit(f"avzsl-train {benchmark} {options} failed with exit code {code}")
    return seconds, json.loads((out / "metrics.json").read_text())


def epoch_seconds(run: Path, stage: str) -> list[float]:
    path = run / stage / "epochs.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line)["seconds"] for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="ucf,activitynet,vggsound")
    parser.add_argument("--epochs", type=int, default=50, help="stage-1 epochs (the default of avzsl-train)")
    parser.add_argument("--vggsound-epochs", type=int, default=50, help="stage-1 epochs at VGGSound size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="protocol_time_") as tmp:
        for size in args.sizes.split(","):
            root = Path(tmp) / size
            t0 = time.perf_counter()
            videos = write_benchmark_cache(root / "cache", BenchmarkSynthSpec(benchmark=size, seed=args.seed))
            build = time.perf_counter() - t0
            ridge_s, _ = train_seconds(size, root / "cache", root / "ridge", ["--method", "ridge"])
            epochs = args.vggsound_epochs if size == "vggsound" else args.epochs
            default_s, metrics = train_seconds(size, root / "cache", root / "default", ["--epochs", str(epochs)])
            per_epoch = [epoch_seconds(root / "default", s) for s in ("stage1", "stage2")]
            worst = args.epochs * sum(sum(v) / len(v) for v in per_epoch if v)
            rows.append((size, videos, build, ridge_s, epochs, metrics, default_s, worst))
    out = [f"torch threads: {torch.get_num_threads()}",
           "| size | videos | cache s | ridge protocol s | default epochs | e* | default protocol s | default / ridge "
           "| worst case (e* = last) s | test H default |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for size, videos, build, ridge_s, epochs, metrics, default_s, worst in rows:
        out.append(f"| {size} | {videos} | {build:.1f} | {ridge_s:.1f} | {epochs} | {metrics['epoch']} "
                   f"| {default_s:.1f} | {default_s / ridge_s:.1f} | {worst:.0f} | {metrics['H']:.2f} |")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
