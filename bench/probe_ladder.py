"""Where the gap between the cross-entropy probe and the paper's method comes from (issue 18, validation only).

Usage: python bench/probe_ladder.py --out DIR --world WORLD [--seeds 0,1,2] [--epochs 30]
       python bench/probe_ladder.py --out DIR --benchmark ucf --cache CACHE [--seeds 42] [--epochs 50]

``ce_probe`` leads the paper's method (``coordinate_generalize``, ``recommended``) on stage-1 validation at every
size. The probe differs from the paper's method in a few choices that the paper's method has by design (a learned
map f_w of the class embeddings, a low temperature) and in architecture (masks, attention fusion, two branch
softmaxes, BCE). This script moves the probe towards the paper's method one choice at a time and all together
(``probe_like_cg``: dropout 0, temperature 0.05, no weight decay, hidden 256, a learned linear text projection), so
the part of the gap that the choices explain is the probe's loss along the ladder and the rest is the paper's
architecture. Stage 1 only, stage-1 validation H (x100) at the best epoch; no test split is read.

With ``--world`` (a real-media benchmark folder: ``bench/real_media_benchmark.py build`` then ``avzsl-extract``
into WORLD/cache) the data are fixed and ``--seeds`` are model seeds; with ``--benchmark`` and ``--cache`` (an
``avzsl-synth`` cache) they are model seeds on that cache. Finished rows are kept in ``DIR/rows.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# name -> (method, options); each row changes the probe towards the paper's method, or is the paper's method.
LADDER: dict[str, tuple[str, dict[str, Any]]] = {
    "probe": ("ce_probe", {}),
    "probe_dropout0": ("ce_probe", {"dropout": 0.0}),
    "probe_tau0.05": ("ce_probe", {"temperature": 0.05}),
    "probe_wd0": ("ce_probe", {"weight_decay": 0.0}),
    "probe_hidden256": ("ce_probe", {"hidden": 256}),
    "probe_textproj": ("ce_probe", {"text_projection": True}),
    "probe_like_cg": ("ce_probe", {"dropout": 0.0, "temperature": 0.05, "weight_decay": 0.0, "hidden": 256,
                                   "text_projection": True}),
    "coordinate_generalize": ("coordinate_generalize", {}),
}


def run_row(out: Path, args: argparse.Namespace, name: str, seed: int, data: dict[str, Any]) -> dict[str, Any]:
    """Stage 1 of one ladder row with one model seed; returns the validation metrics at the best epoch."""
    import torch

    from avzsl.pipeline.run.config import TrainConfig
    from avzsl.pipeline.train.protocol import load_protocol_data, run_stage1

    method, options = LADDER[name]
    where: dict[str, Any] = ({"cache": str(Path(args.world) / "cache"), "splits": str(Path(args.world) / "splits")}
                             if args.world else {"cache": args.cache, "benchmark": args.benchmark})
    cfg = TrainConfig(**where, seed=seed, epochs=args.epochs, method=method, method_options=options)
    if "parts" not in data:  # the same cache and splits for every row and seed (no method here needs sequences)
        data["parts"] = load_protocol_data(cfg)[0]
    run_dir = out / "runs" / f"{name}_s{seed}_{cfg.result_hash()}"
    run_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    best = run_stage1(cfg, data["parts"], run_dir, torch.device("cpu"))
    return {"name": name, "seed": seed, "epoch": best["epoch"], **{k: 100 * best[k] for k in ("S", "U", "H", "ZSL")},
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for runs and rows.json")
    parser.add_argument("--world", default=None, help="real-media benchmark folder (WORLD/cache, WORLD/splits)")
    parser.add_argument("--benchmark", choices=("ucf", "activitynet", "vggsound"), default=None)
    parser.add_argument("--cache", default=None, help="avzsl-synth cache of --benchmark")
    parser.add_argument("--seeds", default="0,1,2", help="model seeds")
    parser.add_argument("--epochs", type=int, default=30, help="stage-1 epochs per run")
    parser.add_argument("--rows", default=",".join(LADDER), help="comma-separated subset of the ladder")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    if bool(args.world) == bool(args.benchmark and args.cache):
        parser.error("give --world, or --benchmark with --cache")
    names = [n.strip() for n in args.rows.split(",")]
    if unknown := set(names) - set(LADDER):
        parser.error(f"unknown rows {sorted(unknown)}; known: {', '.join(LADDER)}")
    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    rows_path = args.out / "rows.json"
    rows: dict[str, dict[str, Any]] = json.loads(rows_path.read_text()) if rows_path.is_file() else {}
    seeds = [int(s) for s in args.seeds.split(",")]
    data: dict[str, Any] = {}
    for name in names:
        for seed in seeds:
            key = f"{name}|seed={seed}|epochs={args.epochs}"
            if key not in rows:
                rows[key] = run_row(args.out, args, name, seed, data)
                rows_path.write_text(json.dumps(rows, indent=1, sort_keys=True))
            r = rows[key]
            sys.stdout.write(f"  {name} seed {seed}: val H {r['H']:.2f} (e* {r['epoch']}, {r['seconds']:.0f} s)\n")
            sys.stdout.flush()
    data_text = f"world {args.world}" if args.world else f"{args.benchmark} cache {args.cache}"
    lines = [f"data: {data_text}; model seeds {seeds}; {args.epochs} stage-1 epochs; stage-1 validation x100",
             f"{'row':<24}{'S':>8}{'U':>8}{'H':>8}{'H std':>8}{'ZSL':>8}  e* per seed"]
    for name in names:
        group = [rows[f"{name}|seed={s}|epochs={args.epochs}"] for s in seeds]
        mean = {k: statistics.mean(r[k] for r in group) for k in ("S", "U", "H", "ZSL")}
        std = statistics.stdev(r["H"] for r in group) if len(group) > 1 else 0.0
        lines.append(f"{name:<24}{mean['S']:>8.2f}{mean['U']:>8.2f}{mean['H']:>8.2f}{std:>8.2f}{mean['ZSL']:>8.2f}  "
                     + ", ".join(str(r["epoch"]) for r in group))
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
