"""Validation study behind ``PRESETS["recommended"]`` of ``coordinate_generalize`` (issues 8 and 18).

Usage: python bench/validate_recommended.py --out DIR [--jobs 2] [--epochs 20] [--seeds 101,102,103] [--all-factors]
       python bench/validate_recommended.py --out DIR --study scale --benchmark activitynet [--seeds 101] [--jobs 1]
       python bench/validate_recommended.py --out DIR --study scale --world WORLD [--seeds 0,1,2]

``--study issue8`` (default) is the study that chose ``recommended`` on UCF-size data of the version-1 generator
(``--difficulty v1``, the default of this study); ``--study scale`` (issue 18) screens the open choices that matter
at scale (weight decay, the form of f_w, the temperature) one at a time against the current default
(``recommended`` itself), on data of ``--benchmark`` size and the generator's default ``--difficulty``, or on
the real pretrained features of a real-media benchmark world (``--world``, ``bench/real_media_benchmark.py``; its
data are fixed, so the seeds are model seeds there).

On ``avzsl-synth`` UCF-size data (benchmark-shaped: the real UCF-GZSL split files and released fastText class
embeddings, synthetic features; seeds 101-103 are used for this study only, never for the test comparison),
every candidate configuration trains **stage 1 only** (stage_1_train, per-epoch validation on stage_1_val with
exact calibration, as ``avzsl-train`` does) and the table lists its stage-1 **validation** S/U/H/ZSL at the best
epoch. No test split is read. The study runs in three rounds:

1. screening, the first data seed: the base configuration and one change of one open choice at a time;
2. combination, the same seed: the base plus every change that beat the base by at least ``--min-gain`` H points,
   all of them together (``--pairs``: also each pair of them);
3. confirmation: the best ``--confirm`` (2) configurations of rounds 1-2 on the other data seeds; the winner is the best
   mean validation H over all study seeds.

Columns ``H@E/2`` and ``H@3E/4`` are the best validation H within the first half / three quarters of the epochs
of the same run (the epoch budget is another open choice; e* is picked by validation H just as with fewer epochs).
The paper-fixed values (lambda_1 = 1, lambda_2 = 0.5, beta = 0.5, Adam lr 1e-3, batch 256, rho = 0.1 for UCF)
are never varied.
Finished rows are cached in ``DIR/rows.json`` (keyed by configuration and seed), so an interrupted study resumes.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

# The screening base: cosine similarity with tau 0.1 on standardized inputs (the strongest simple model
# used cosine scores and standardized inputs); every other field is the paper's reading.
BASE: dict[str, Any] = {"similarity": "cosine", "tau": 0.1, "learn_temperature": False, "standardize": True,
                        "dropout": 0.1, "mask_ratio_meaning": "ones", "topk_by": "magnitude", "mask_norm": "l2",
                        "pseudo_mask_scope": "sample"}

# One change of one open choice at a time (name -> overrides of BASE). "paper" is the literal reading for reference.
SCREEN: dict[str, dict[str, Any]] = {
    "base": {},
    "paper": {"similarity": "dot", "tau": 1.0, "standardize": False},
    "dot_tau1": {"similarity": "dot", "tau": 1.0},
    "raw_inputs": {"standardize": False},
    "tau0.05": {"tau": 0.05},
    "tau0.2": {"tau": 0.2},
    "tau_learned": {"learn_temperature": True},
    "rho_zeros": {"mask_ratio_meaning": "zeros"},
    "dropout0.3": {"dropout": 0.3},
}
# Screened only with --all-factors (the shared machine left no time for them in the recorded study).
EXTRA_SCREEN: dict[str, dict[str, Any]] = {
    "dropout0": {"dropout": 0.0},
    "topk_value": {"topk_by": "value"},
    "mask_mse": {"mask_norm": "mse"},
    "mask_batch": {"pseudo_mask_scope": "batch"},
}
# Issue 18 (--study scale): one change of the current default (recommended, BASE_SCALE = no override) at a time.
BASE_SCALE: dict[str, Any] = {}
SCALE_SCREEN: dict[str, dict[str, Any]] = {  # in the order run (the first ones when time is short)
    "base": {},
    "fw_residual": {"text_form": "residual"},
    "adamw_0.01": {"weight_decay": 0.01, "decoupled_weight_decay": True},  # recommended since this study
    "tau0.1": {"tau": 0.1},
    "adam_l2_1e-4": {"weight_decay": 1e-4, "decoupled_weight_decay": False},
    "fw_dropout0.3": {"text_dropout": 0.3},
}
# Screened only with --all-factors in the scale study (f_w as one linear layer leaves the paper's "two-layer MLP").
EXTRA_SCALE_SCREEN: dict[str, dict[str, Any]] = {
    "fw_linear": {"text_form": "linear"},
    "tau0.02": {"tau": 0.02},
    "adam_l2_1e-3": {"weight_decay": 1e-3, "decoupled_weight_decay": False},
    "adam_no_decay": {"weight_decay": 0.0, "decoupled_weight_decay": False},  # recommended before this study
    "embed_hidden128": {"embed_hidden": 128},
    # Steps per epoch (a protocol setting, not a model option): ActivityNet's natural count (ceil(9204 / 256)) at
    # every size, so at VGGSound size (275 natural batches) e* is picked 7.6 times more finely.
    "batches36": {"batches_per_epoch": 36},
}
PROTOCOL_KEYS = ("batches_per_epoch",)
"""Override keys that set :class:`TrainConfig` fields instead of method options."""
# Diagnostics (--diagnostics): changes of what the paper fixes, screened to explain a gap, never a candidate.
DIAGNOSTICS: dict[str, dict[str, Any]] = {
    "latent300_notpaper": {"embed_dim": 300},  # the paper's common space is 64-d; 300 = the class embeddings' size
}
# Changes never combined or chosen: reference rows and diagnostics.
NOT_COMBINED = {"base", "paper", *DIAGNOSTICS}

STUDY_MODEL_SEED = 42
_DATA: dict[str, Any] = {}
"""Loaded protocol data per cache path (one load per worker process and cache)."""


def config_key(overrides: dict[str, Any], base: dict[str, Any] | None = None) -> str:
    """The configuration a row was run with: base and overrides, and a fingerprint of the method's defaults (which
    fill every field neither sets), so a cached row of an earlier default is not taken for the current one."""
    import dataclasses

    from avzsl.model.coordinate_generalize import CoordinateGeneralizeOptions

    defaults = json.dumps(dataclasses.asdict(CoordinateGeneralizeOptions()), sort_keys=True)
    merged = dict(sorted({**(BASE if base is None else base), **overrides}.items()))
    return json.dumps({**merged, "_defaults": hashlib.sha256(defaults.encode()).hexdigest()[:12]}, sort_keys=True)


def data_name(benchmark: str, difficulty: str) -> str:
    """Cache folder prefix and row-id suffix of a data set (the issue-8 study's own data keep their old names)."""
    return "" if (benchmark, difficulty) == ("ucf", "v1") else f"{benchmark}_{difficulty}"


def ensure_cache(root: Path, seed: int, benchmark: str = "ucf", difficulty: str = "v1",
                 world: str | None = None) -> Path:
    """The benchmark-shaped cache of ``benchmark`` size, ``difficulty`` and ``seed`` (built once), or the cache of
    a real-media ``world`` (``bench/real_media_benchmark.py build`` + ``avzsl-extract``; fixed data)."""
    if world:
        return Path(world) / "cache"
    from avzsl.pipeline.synth.benchmark import BenchmarkSynthSpec, write_benchmark_cache

    path = root / "caches" / f"{data_name(benchmark, difficulty) or 'ucf'}_s{seed}"
    if not (path / "cache.json").is_file():
        if path.exists():
            import shutil

            shutil.rmtree(path)
        write_benchmark_cache(path, BenchmarkSynthSpec(benchmark=benchmark, seed=seed, difficulty=difficulty))
    return path


def run_one(root: str, name: str, overrides: dict[str, Any], seed: int, epochs: int, base: dict[str, Any],
            benchmark: str = "ucf", difficulty: str = "v1", patience: int | None = None,
            world: str | None = None) -> dict[str, Any]:
    """Stage 1 of one configuration on the data of ``seed``; returns the table row (validation only).

    With ``world`` (a real-media benchmark folder) the data are fixed and ``seed`` is the model seed."""
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))  # 1 unless set (--jobs 1: the cores)
    torch.set_flush_denormal(True)
    logging.basicConfig(level=logging.WARNING)
    from avzsl.pipeline.run.config import PAPER_MASK_RATIO, TrainConfig
    from avzsl.pipeline.train.protocol import load_protocol_data, run_stage1

    cache = ensure_cache(Path(root), seed, benchmark, difficulty, world)
    merged = {**base, **overrides}
    protocol = {k: merged.pop(k) for k in PROTOCOL_KEYS if k in merged}
    # The real-media world: its own split folder, seed = model seed, the recommended rho (0.1); synthetic data:
    # the benchmark's splits, seed = data seed (the model seed fixed), the paper's rho of that benchmark.
    where: dict[str, Any] = ({"splits": str(Path(world) / "splits"), "seed": seed} if world else
                             {"benchmark": benchmark, "seed": STUDY_MODEL_SEED})
    if not world:
        merged["mask_ratio"] = PAPER_MASK_RATIO[benchmark]
    cfg = TrainConfig(cache=str(cache), **where, epochs=epochs, patience=patience, method="coordinate_generalize",
                      method_options=merged, **protocol)
    run_dir = Path(root) / "runs" / f"{name}_s{seed}_{cfg.result_hash()}"
    run_dir.mkdir(parents=True, exist_ok=True)
    if str(cache) not in _DATA:  # the data depend on the cache only (a world's seeds share one)
        _DATA[str(cache)] = load_protocol_data(cfg)[0]
    started = time.perf_counter()
    best = run_stage1(cfg, _DATA[str(cache)], run_dir, torch.device("cpu"))
    seconds = time.perf_counter() - started
    history = [json.loads(line) for line in (run_dir / "stage1" / "epochs.jsonl").read_text().splitlines()]

    def best_within(k: int) -> float:
        return max(r["val"]["H"] for r in history[:k])

    calib = best.get("calibration") or {}
    return {"name": name, "seed": seed, "overrides": overrides, "key": config_key(overrides, base),
            "epoch": best["epoch"],
            "S": best["S"], "U": best["U"], "H": best["H"], "ZSL": best["ZSL"], "H@a": best_within(epochs // 2),
            "H@b": best_within(3 * epochs // 4), "at_edge": bool(calib.get("at_edge")), "seconds": round(seconds, 1),
            "epochs": epochs}


class Study:
    """Cached rows (``DIR/rows.json``) and parallel execution of the missing ones."""

    def __init__(self, root: Path, epochs: int, jobs: int, base: dict[str, Any] | None = None,
                 benchmark: str = "ucf", difficulty: str = "v1", patience: int | None = None,
                 world: str | None = None) -> None:
        self.root, self.epochs, self.jobs, self.world = root, epochs, jobs, world
        self.base = BASE if base is None else base
        self.benchmark, self.difficulty, self.patience = benchmark, difficulty, patience
        self.path = root / "rows.json"
        self.rows: dict[str, dict[str, Any]] = json.loads(self.path.read_text()) if self.path.is_file() else {}

    def _id(self, overrides: dict[str, Any], seed: int) -> str:
        data = f"world={Path(self.world).resolve()}" if self.world else data_name(self.benchmark, self.difficulty)
        stop = f"|patience={self.patience}" if self.patience else ""
        suffix = stop + (f"|{data}" if data else "")
        return f"{config_key(overrides, self.base)}|seed={seed}|epochs={self.epochs}{suffix}"

    def run(self, jobs: list[tuple[str, dict[str, Any], int]]) -> list[dict[str, Any]]:
        todo = [(n, o, s) for n, o, s in jobs if self._id(o, s) not in self.rows]
        for seed in sorted({s for _, _, s in todo}):  # built here once, not raced by workers
            ensure_cache(self.root, seed, self.benchmark, self.difficulty, self.world)
        if todo:
            with ProcessPoolExecutor(self.jobs, mp_context=get_context("spawn")) as pool:
                futures = {pool.submit(run_one, str(self.root), n, o, s, self.epochs, self.base, self.benchmark,
                                       self.difficulty, self.patience, self.world): (n, o, s)
                           for n, o, s in todo}
                for fut in as_completed(futures):
                    n, o, s = futures[fut]
                    row = fut.result()
                    self.rows[self._id(o, s)] = row
                    self.path.write_text(json.dumps(self.rows, indent=1, sort_keys=True))
                    sys.stdout.write(f"  done {n} seed {s}: val H {row['H'] * 100:.2f} ({row['seconds']:.0f} s)\n")
                    sys.stdout.flush()
        return [dict(self.rows[self._id(o, s)], name=n) for n, o, s in jobs]


def table(rows: list[dict[str, Any]], title: str, epochs: int) -> str:
    lines = [title, f"{'config':<34}{'seed':>5}{'S':>7}{'U':>7}{'H':>7}{'ZSL':>7}{'e*':>4}{'H@' + str(epochs // 2):>7}"
             f"{'H@' + str(3 * epochs // 4):>7}{'edge':>5}{'s':>6}"]
    for r in rows:
        lines.append(f"{r['name']:<34}{r['seed']:>5}{r['S'] * 100:>7.2f}{r['U'] * 100:>7.2f}{r['H'] * 100:>7.2f}"
                     f"{r['ZSL'] * 100:>7.2f}{r['epoch']:>4}{r['H@a'] * 100:>7.2f}{r['H@b'] * 100:>7.2f}"
                     f"{'yes' if r['at_edge'] else 'no':>5}{r['seconds']:>6.0f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="study folder (caches, runs, rows.json)")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (1 torch thread each)")
    parser.add_argument("--epochs", type=int, default=20, help="stage-1 epochs per run")
    parser.add_argument("--seeds", default="101,102,103", help="data seeds: the first screens, the rest confirm")
    parser.add_argument("--min-gain", type=float, default=0.5, help="H points over the base to enter combination")
    parser.add_argument("--confirm", type=int, default=2, help="configurations confirmed on the other seeds")
    parser.add_argument("--all-factors", action="store_true", help="also screen dropout 0 and the mask details")
    parser.add_argument("--pairs", action="store_true", help="round 2 also tries each pair of gaining changes")
    parser.add_argument("--paper-confirm", action="store_true", help="also run paper on the confirmation seeds")
    parser.add_argument("--study", choices=("issue8", "scale"), default="issue8",
                        help="issue8: the study behind recommended; scale: issue 18's choices against recommended")
    parser.add_argument("--benchmark", choices=("ucf", "activitynet", "vggsound"), default="ucf",
                        help="size of the avzsl-synth data (split files and class embeddings of this benchmark)")
    parser.add_argument("--difficulty", default=None,
                        help="avzsl-synth difficulty level (default: v1 for --study issue8, the generator's default "
                        "for --study scale)")
    parser.add_argument("--world", default=None,
                        help="a real-media benchmark folder (bench/real_media_benchmark.py build, then avzsl-extract "
                        "into DIR/cache) instead of avzsl-synth data; --seeds are then model seeds on its fixed data")
    parser.add_argument("--factors", default=None,
                        help="comma-separated subset of the screened changes to run ('base' is always run), for sizes "
                        "where a run takes minutes")
    parser.add_argument("--diagnostics", action="store_true",
                        help="also run changes of what the paper fixes (a 300-d common space), on every seed, to "
                        "explain a gap; never combined or chosen")
    parser.add_argument("--patience", type=int, default=None,
                        help="stop a run once validation H has not improved for this many epochs (H@ columns then "
                        "cover the epochs run)")
    args = parser.parse_args()
    if args.all_factors:
        SCREEN.update(EXTRA_SCREEN)
    global BASE
    if args.study == "scale":
        from avzsl.pipeline.synth.benchmark import DEFAULT_DIFFICULTY

        BASE = BASE_SCALE
        SCREEN.clear()
        SCREEN.update(SCALE_SCREEN)
        if args.all_factors:
            SCREEN.update(EXTRA_SCALE_SCREEN)
    if args.diagnostics:
        SCREEN.update(DIAGNOSTICS)
    if args.factors:
        wanted = {"base", *(f.strip() for f in args.factors.split(","))}
        unknown = wanted - set(SCREEN)
        if unknown:
            parser.error(f"unknown factors {sorted(unknown)}; known: {', '.join(SCREEN)}")
        for name in set(SCREEN) - wanted:
            del SCREEN[name]
    difficulty = args.difficulty or ("v1" if args.study == "issue8" else DEFAULT_DIFFICULTY)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    seeds = [int(s) for s in args.seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    study = Study(args.out, args.epochs, args.jobs, BASE, args.benchmark, difficulty, args.patience, args.world)
    data = (f"real-media world {args.world}, model seeds {seeds}" if args.world else
            f"avzsl-synth --benchmark {args.benchmark} --difficulty {difficulty}, seeds {seeds}; "
            f"model seed {STUDY_MODEL_SEED}")
    out: list[str] = [f"data: {data}; {args.epochs} stage-1 epochs"
                      + (f" (patience {args.patience})" if args.patience else "") + "; stage-1 validation metrics x100",
                      f"base: {json.dumps(BASE, sort_keys=True)} (over the defaults, i.e. recommended)"]

    sys.stdout.write("round 1: screening\n")
    screen = study.run([(n, o, seeds[0]) for n, o in SCREEN.items()])
    out.append(table(screen, f"\nround 1: one change at a time (seed {seeds[0]})", args.epochs))
    base_h = next(r["H"] for r in screen if r["name"] == "base")
    gains = sorted(((r["H"] - base_h, r["name"]) for r in screen if r["name"] not in NOT_COMBINED), reverse=True)
    winners = [n for g, n in gains if g * 100 >= args.min_gain]
    # Two changes of the same field cannot be combined; keep the better one.
    fields_seen: set[str] = set()
    usable = []
    for n in winners:
        if not fields_seen & set(SCREEN[n]):
            usable.append(n)
            fields_seen |= set(SCREEN[n])
    combos: dict[str, dict[str, Any]] = {}
    if len(usable) >= 2:
        combos["+".join(usable)] = {k: v for n in usable for k, v in SCREEN[n].items()}
        if args.pairs:
            for a, b in itertools.combinations(usable, 2):
                combos.setdefault(f"{a}+{b}", {**SCREEN[a], **SCREEN[b]})
    sys.stdout.write(f"round 2: combining {usable or 'nothing (no change beat the base)'}\n")
    combo_rows = study.run([(n, o, seeds[0]) for n, o in combos.items()])
    if combo_rows:
        out.append(table(combo_rows, f"\nround 2: combinations of the changes that gained >= {args.min_gain} H "
                                     f"(seed {seeds[0]})", args.epochs))
    ranked = sorted([r for r in screen + combo_rows if r["name"] not in NOT_COMBINED - {"base"}],
                    key=lambda r: -r["H"])
    top = ranked[: args.confirm]
    if not any(r["name"] == "base" for r in top):  # the base is always confirmed too: a gain is over it, per seed
        top.append(next(r for r in screen if r["name"] == "base"))
    confirm_jobs = [(r["name"], r["overrides"], s) for r in top for s in seeds[1:]]
    if args.paper_confirm:
        confirm_jobs += [("paper", SCREEN["paper"], s) for s in seeds[1:]]
    if args.diagnostics:
        confirm_jobs += [(n, o, s) for n, o in DIAGNOSTICS.items() for s in seeds[1:]]
    sys.stdout.write(f"round 3: confirming {[r['name'] for r in top]} on seeds {seeds[1:]}\n")
    confirm = study.run(confirm_jobs)
    out.append(table(confirm, f"\nround 3: the best {args.confirm} on seeds {seeds[1:]}", args.epochs))
    lines = [f"\nmean over seeds {seeds}", f"{'config':<34}{'S':>7}{'U':>7}{'H':>7}{'H std':>7}{'ZSL':>7}"
             f"{'H@' + str(args.epochs // 2):>7}{'H@' + str(3 * args.epochs // 4):>7}"]
    summary = []
    for r in top + [r for r in screen if r["name"] == "paper" or r["name"] in DIAGNOSTICS]:
        group = [r] + [c for c in confirm if c["key"] == r["key"]]
        mean = {k: sum(g[k] for g in group) / len(group) for k in ("S", "U", "H", "ZSL", "H@a", "H@b")}
        std = (sum((g["H"] - mean["H"]) ** 2 for g in group) / max(len(group) - 1, 1)) ** 0.5
        summary.append((mean["H"], r["name"], r["overrides"]))
        lines.append(f"{r['name']:<34}{mean['S'] * 100:>7.2f}{mean['U'] * 100:>7.2f}{mean['H'] * 100:>7.2f}"
                     f"{std * 100:>7.2f}{mean['ZSL'] * 100:>7.2f}{mean['H@a'] * 100:>7.2f}{mean['H@b'] * 100:>7.2f}")
    out.append("\n".join(lines))
    best = max(s for s in summary if s[1] not in NOT_COMBINED - {"base"})
    out.append(f"\nwinner (best mean validation H): {best[1]} = {json.dumps({**BASE, **best[2]}, sort_keys=True)}")
    edges = sum(r["at_edge"] for r in study.rows.values())
    out.append(f"calibration at an edge of its range: {edges} of {len(study.rows)} stage-1 runs")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
