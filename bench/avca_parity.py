"""AVCA parity: avzsl's ``--method avca`` and the reference code (ExplainableML/AVCA-GZSL) on the same features.

Usage::

    python bench/avca_parity.py --reference /path/to/AVCA-GZSL --out DIR [--seeds 0,1,2]
                                [--epochs 8] [--batches-per-epoch 50] [--deps DIR]

Procedure (every step is skipped when its output is already complete, so a rerun resumes):

1. ``avzsl-synth --benchmark ucf`` builds a benchmark-shaped synthetic cache (``DIR/cache``);
2. ``avzsl-export avca --dataset ucf --text-order by_class_id`` writes it in the reference's folder layout
   (``DIR/export``), with the benchmark's UCF main split; ``by_class_id`` makes the reference's positional text
   lookup give every class its own embedding, as avzsl does;
3. for each seed the reference runs UNCHANGED, with its UCF main-feature arguments
   (``run_scripts/UCF-GZSL/avca.sh``) except ``--epochs`` / ``--n_batches`` (reduced equally on both sides for
   this CPU) and ``--device cpu --seed S``: stage 1 (``main.py``), stage 2 (``main.py --retrain_all
   --save_checkpoints``), then ``get_evaluation.py``; its test line ``Seen performance=..`` is parsed from
   ``eval.log``;
4. for each seed ``avzsl-train --method avca --calibration reference`` with the same epochs, batches per epoch,
   batch size and learning rate; its ``metrics.json`` is read;
5. a table: per seed and mean ± std (sample std, ddof=1) of test S / U / H / ZSL for both sides.

The reference needs ``pandas`` and ``einops`` (not avzsl dependencies): install them once outside the repository,
``pip install --no-deps --target DIR pandas einops tzdata pytz``, and pass ``--deps DIR``. Four run-time shims,
written to ``DIR/shims/sitecustomize.py`` and put first on the reference's ``PYTHONPATH`` (none of its files is
edited): a no-op ``torch.utils.tensorboard.SummaryWriter`` (tensorboard is not installed; it only logs scalars), an
empty ``ptflops`` module (imported, never used), ``ReduceLROnPlateau`` accepting the ``verbose=`` argument
that torch >= 2.7 removed, and ``src.logger.PD_Stats`` turning the ``dict_keys`` column name that
``get_evaluation.py`` passes (accepted by its pinned pandas 1.2, rejected by pandas >= 2) into a tuple; that
table is never filled. The reference has a ``--device`` argument, so ``--device cpu`` needs no shim.
Results: docs/reproduce.md, "AVCA parity".
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

METRICS = ("S", "U", "H", "ZSL")

SHIM = '''"""Run-time shims so ExplainableML/AVCA-GZSL runs unchanged here (written by avzsl bench/avca_parity.py)."""
import sys
import types

# tensorboard is not installed: SummaryWriter (used only for add_scalar logging) becomes a no-op.
_tb = types.ModuleType("torch.utils.tensorboard")


class SummaryWriter:
    def __init__(self, *args, **kwargs):
        pass

    def add_scalar(self, *args, **kwargs):
        pass

    def close(self):
        pass


_tb.SummaryWriter = SummaryWriter
sys.modules["torch.utils.tensorboard"] = _tb

# main.py imports ptflops.get_model_complexity_info but never calls it.
_pf = types.ModuleType("ptflops")
_pf.get_model_complexity_info = lambda *a, **k: (None, None)
sys.modules["ptflops"] = _pf

# torch >= 2.7 removed ReduceLROnPlateau(verbose=...); the reference passes verbose=True. Drop the argument.
import torch.optim.lr_scheduler as _ls  # noqa: E402

_orig_init = _ls.ReduceLROnPlateau.__init__


def _init(self, *args, verbose=None, **kwargs):
    _orig_init(self, *args, **kwargs)


_ls.ReduceLROnPlateau.__init__ = _init


# get_evaluation.py builds PD_Stats(..., columns=[config.__dict__.keys()]): one column NAMED by a dict_keys object,
# which the pinned pandas 1.2 accepted and pandas >= 2 rejects (unhashable). That table is never written to. After
# src.logger is imported, PD_Stats turns such a column name into a tuple of the same names.
import importlib.abc  # noqa: E402
import importlib.machinery  # noqa: E402


def _patch_logger(module):
    orig = module.PD_Stats.__init__

    def __init__(self, path, columns):
        orig(self, path, [tuple(c) if type(c).__name__ == "dict_keys" else c for c in columns])

    module.PD_Stats.__init__ = __init__


class _LoggerFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "src.logger":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        exec_module = loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            _patch_logger(module)

        loader.exec_module = exec_and_patch
        return spec


sys.meta_path.insert(0, _LoggerFinder())
'''

# run_scripts/UCF-GZSL/avca.sh, first (stage 1) and third (stage 2) lines, without --epochs / --n_batches /
# --exp_name, which are set per run.
REFERENCE_UCF_MAIN_ARGS = shlex.split(
    "--root_dir avgzsl_benchmark_datasets/UCF --feature_extraction_method main_features --input_size_audio 512 "
    "--input_size_video 512 --lr_scheduler --dataset_name UCF --zero_shot_split main_split --AVCA --lr 0.001 "
    "--embeddings_hidden_size 512 --decoder_hidden_size 512 --embedding_dropout 0.2 --decoder_dropout 0.3 "
    "--additional_dropout 0.5 --depth_transformer 1 --additional_triplets_loss --first_additional_triplet 1 "
    "--second_additional_triplet 1 --momentum 0.1 --reg_loss"
)

_PERF = re.compile(r"Seen performance=(?P<S>[-\d.]+), Unseen performance=(?P<U>[-\d.]+), "
                   r"GZSL performance=(?P<H>[-\d.]+), ZSL performance=(?P<ZSL>[-\d.]+)")
_BETA = re.compile(r"Best beta combined: (?P<beta>[-\d.eE+]+)")
_EPOCH = re.compile(r"Load from epoch: (?P<epoch>\d+)")
_VALID = re.compile(r"VALID\tEpoch: (?P<epoch>\d+)/\d+\t.*\tHM: (?P<hm>[-\d.]+)")


def parse_reference_eval(text: str) -> dict[str, float]:
    """Test metrics from the reference's ``eval.log`` (``get_evaluation.py`` output).

    Args:
        text: the log text; the LAST ``Seen performance=...`` line is used (a rerun appends to the log).

    Returns:
        ``{"S", "U", "H", "ZSL"}`` in percent (as logged, x100), plus ``"beta"`` (the calibration chosen on
        validation) and ``"epoch"`` (the stage-1 best epoch, 1-based, whose stage-2 checkpoint was tested) when
        the log has them.

    Raises:
        ValueError: no performance line in the text.
    """
    perf = list(_PERF.finditer(text))
    if not perf:
        raise ValueError("no 'Seen performance=...' line in the reference evaluation log")
    out = {k: float(v) for k, v in perf[-1].groupdict().items()}
    betas = list(_BETA.finditer(text))
    if betas:
        out["beta"] = float(betas[-1]["beta"])
    epochs = list(_EPOCH.finditer(text))
    if epochs:
        # Stage A's best checkpoint and stage B's checkpoint of the same epoch are both logged; they agree.
        out["epoch"] = float(epochs[-1]["epoch"])
    return out


def parse_validation_h(text: str) -> list[float]:
    """Per-epoch validation H (fraction) from a reference ``train.log`` (its ``VALID ... HM: x`` lines), in order."""
    return [float(m["hm"]) for m in _VALID.finditer(text)]


def plateau_drops(h_per_epoch: list[float], patience: int = 3) -> list[int]:
    """1-based epochs after which ``ReduceLROnPlateau('max', patience)`` (torch defaults otherwise, as in the
    reference) lowers the learning rate when stepped with these H values; replays torch's own scheduler."""
    import torch

    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "max", patience=patience)
    drops = []
    for epoch, h in enumerate(h_per_epoch, start=1):
        before = opt.param_groups[0]["lr"]
        sched.step(h)
        if opt.param_groups[0]["lr"] < before:
            drops.append(epoch)
    return drops


def summarise(rows: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Mean and sample standard deviation (ddof=1; 0 for a single row) of each metric over seeds."""
    out = {}
    for key in METRICS:
        vals = [r[key] for r in rows]
        out[key] = (statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else 0.0)
    return out


def format_table(results: dict[str, dict[int, dict[str, float]]]) -> str:
    """Markdown table: one row per (side, seed), then mean ± std per side."""
    lines = ["| side | seed | S | U | H | ZSL |", "|---|---|---|---|---|---|"]
    for side, per_seed in results.items():
        for seed, row in sorted(per_seed.items()):
            lines.append(f"| {side} | {seed} | " + " | ".join(f"{row[k]:.2f}" for k in METRICS) + " |")
    for side, per_seed in results.items():
        if not per_seed:
            continue
        stats = summarise(list(per_seed.values()))
        lines.append(f"| {side} | mean ± std | "
                     + " | ".join(f"{m:.2f} ± {s:.2f}" for m, s in (stats[k] for k in METRICS)) + " |")
    return "\n".join(lines)


def _run(cmd: list[str], cwd: Path | None, env: dict[str, str], log: Path) -> None:
    """Run one command, its stdout+stderr appended to ``log``; a failure raises with the log's tail."""
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with log.open("a") as fh:
        fh.write("$ " + " ".join(cmd) + "\n")
        fh.flush()
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=fh, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n--- {log} tail ---\n{tail}")
    sys.stderr.write(f"  done in {time.perf_counter() - started:.0f} s: {' '.join(cmd[:3])} ... ({log})\n")


def _finished(train_log: Path) -> bool:
    return train_log.exists() and "FINISHED" in train_log.read_text(errors="replace")


def run_reference(args: argparse.Namespace, export: Path, seed: int, env: dict[str, str]) -> dict[str, float]:
    """Stage 1, stage 2 and the evaluation of the reference for one seed; returns its parsed test metrics."""
    work = args.out / "reference" / f"seed{seed}"
    root = work / "avgzsl_benchmark_datasets" / "UCF"
    root.mkdir(parents=True, exist_ok=True)
    # The reference reads ROOT/{class-split,features} and writes its processed pickles to
    # cwd/avgzsl_benchmark_datasets/UCF/_features_processed: link the export, keep the pickles per seed.
    for name in ("class-split", "features"):
        link = root / name
        if not link.exists():
            link.symlink_to((export / name).resolve())
    ref = args.reference.resolve()
    common = REFERENCE_UCF_MAIN_ARGS + ["--epochs", str(args.epochs), "--n_batches", str(args.batches_per_epoch),
                                        "--bs", str(args.batch_size), "--device", "cpu", "--seed", str(seed),
                                        "--dump_path", str(work)]
    stage_a, stage_b = work / "runs" / "avca_val_main", work / "runs" / "avca_all_main"
    for run_dir, extra in ((stage_a, []), (stage_b, ["--retrain_all", "--save_checkpoints"])):
        if _finished(run_dir / "train.log"):
            continue
        if run_dir.exists():  # an interrupted run: the reference refuses an existing experiment folder
            subprocess.run(["rm", "-rf", str(run_dir)], check=True)
        _run([args.python, str(ref / "main.py"), *common, *extra, "--exp_name", run_dir.name], work, env,
             work / f"{run_dir.name}.out")
    eval_log = stage_b / "eval.log"
    if not (eval_log.exists() and _PERF.search(eval_log.read_text(errors="replace"))):
        _run([args.python, str(ref / "get_evaluation.py"), "--load_path_stage_A", str(stage_a),
              "--load_path_stage_B", str(stage_b), "--dataset_name", "UCF", "--AVCA", "--device", "cpu"],
             work, env, work / "eval.out")
    row = parse_reference_eval(eval_log.read_text(errors="replace"))
    # The reference's verbose LR messages are silenced by the shim; replay its scheduler on the logged H instead.
    for stage, run_dir in (("stage1", stage_a), ("stage2", stage_b)):
        hs = parse_validation_h((run_dir / "train.log").read_text(errors="replace"))
        row[f"{stage}_val_h"] = hs
        row[f"{stage}_lr_drops"] = plateau_drops(hs)
    return row


def run_avzsl(args: argparse.Namespace, cache: Path, seed: int, env: dict[str, str]) -> dict[str, float]:
    """``avzsl-train --method avca`` with the reference run's settings for one seed; returns test metrics."""
    run = args.out / "avzsl" / f"seed{seed}"
    metrics = run / "metrics.json"
    if not metrics.exists():
        cmd = [str(Path(args.python).with_name("avzsl-train")), "--cache", str(cache), "--benchmark", "ucf",
               "--method", "avca", "--out", str(run), "--seed", str(seed), "--epochs", str(args.epochs),
               "--batches-per-epoch", str(args.batches_per_epoch), "--batch-size", str(args.batch_size),
               "--lr", "0.001", "--calibration", "reference", "--device", "cpu"]
        for opt in args.method_option:
            cmd += ["--method-option", opt]
        _run(cmd, None, env, args.out / "avzsl" / f"seed{seed}.out")
    data = json.loads(metrics.read_text())
    row = {k: float(data[k]) for k in METRICS}
    row["beta"], row["epoch"] = float(data["gamma"]), float(data["epoch"])
    stage1 = [json.loads(line) for line in (run / "stage1" / "epochs.jsonl").read_text().splitlines() if line]
    row["stage1_val_h"] = [r["val"]["H"] for r in stage1]
    row["stage1_lr_drops"] = plateau_drops(row["stage1_val_h"])
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="checkout of ExplainableML/AVCA-GZSL")
    parser.add_argument("--out", type=Path, required=True, help="work folder (cache, export, runs, logs)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=8, help="stage-1 (and stage-2) epochs, both sides")
    parser.add_argument("--batches-per-epoch", type=int, default=50, help="the reference's --n_batches")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--synth-seed", type=int, default=0, help="seed of the synthetic cache")
    parser.add_argument("--deps", type=Path, default=None, help="folder with pandas and einops for the reference")
    parser.add_argument("--python", default=sys.executable, help="interpreter of the avzsl venv")
    parser.add_argument("--sides", default="reference,avzsl", help="which sides to run (comma list)")
    parser.add_argument("--method-option", action="append", default=[], help="passed to avzsl-train")
    args = parser.parse_args(argv)
    args.out = args.out.resolve()
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    bindir = Path(args.python).parent

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cache, export = args.out / "cache", args.out / "export"
    if not (cache / "cache.json").exists():
        _run([str(bindir / "avzsl-synth"), "--benchmark", "ucf", "--out", str(cache), "--seed",
              str(args.synth_seed)], None, env, args.out / "synth.out")
    if not (export / "avzsl_export.json").exists():
        split_dir = resources.files("avzsl.data_manifests").joinpath("UCF", "main_split")
        _run([str(bindir / "avzsl-export"), "avca", "--cache", str(cache), "--out", str(export), "--dataset", "ucf",
              "--splits", str(split_dir), "--text-order", "by_class_id"], None, env, args.out / "export.out")

    ref_env = dict(env)
    shims = args.out / "shims"
    shims.mkdir(parents=True, exist_ok=True)
    (shims / "sitecustomize.py").write_text(SHIM)
    ref_env["PYTHONPATH"] = os.pathsep.join([str(shims)] + ([str(args.deps.resolve())] if args.deps else []))

    results: dict[str, dict[int, dict[str, float]]] = {"reference": {}, "avzsl": {}}
    for seed in seeds:
        if "reference" in sides:
            results["reference"][seed] = run_reference(args, export, seed, ref_env)
        if "avzsl" in sides:
            results["avzsl"][seed] = run_avzsl(args, cache, seed, env)
        (args.out / "results.json").write_text(json.dumps(
            {side: {str(k): v for k, v in rows.items()} for side, rows in results.items()}, indent=1))
    sys.stdout.write(f"AVCA parity, synthetic UCF cache (seed {args.synth_seed}), {args.epochs} epochs x "
                     f"{args.batches_per_epoch} batches of {args.batch_size}, test metrics x100\n\n")
    sys.stdout.write(format_table({k: v for k, v in results.items() if v}) + "\n\n")
    for side, per_seed in results.items():
        for seed, row in sorted(per_seed.items()):
            drops = {k: row[k] for k in row if k.endswith("_lr_drops")}
            sys.stdout.write(f"{side} seed {seed}: epoch e* {row.get('epoch', float('nan')):.0f}, calibration "
                             f"{row.get('beta', float('nan')):.3g}, val H per epoch "
                             f"{[round(h * 100, 2) for h in row.get('stage1_val_h', [])]}, LR drops after {drops}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
