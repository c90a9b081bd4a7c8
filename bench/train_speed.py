"""Training speed: steps/s and the wall time of the full two-stage protocol on benchmark-size synthetic caches (CPU).

Usage: python bench/train_speed.py [--sizes ucf,vggsound] [--vggsound-epochs 2] [--threads N]

Caches of the size of UCF-GZSL (6.8k videos, 51 classes) and VGGSound-GZSL (94k videos, 276 classes) are built
from synthetic class-conditional features (512-d audio/visual, 300-d class vectors) in a temporary folder. For
each size the table shows ms per training step of every loss variant (batch 256) with the ratio to the
classification-only step measured in the same run, the scoring time of the validation split, and the wall time of
the whole protocol (stage 1 with per-epoch validation, stage 2, test evaluation) through the real `avzsl-train` code
path. VGGSound runs a reduced number of epochs by default; the full time is extrapolated from its epochs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from avzsl.model.config import LossConfig, ModelConfig
from avzsl.model.losses import compute_losses
from avzsl.model.networks import CoordinateGeneralize
from avzsl.model.scoring import predict_scores
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.synth.features import SyntheticSpec, make_synthetic_cache

SIZES = {
    # videos_per_class chosen so the totals match the benchmarks (UCF 6816, VGGSound ~94k).
    "ucf": SyntheticSpec(30, 12, 9, 134, 512, 512, 300, noise=1.0, shard_size=2000),
    "vggsound": SyntheticSpec(138, 69, 69, 340, 512, 512, 300, noise=1.0, shard_size=5000),
}


def step_ms(num_classes: int, variant: str, steps: int = 20) -> float:
    torch.manual_seed(0)
    model = CoordinateGeneralize(ModelConfig())
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    audio, visual = torch.randn(256, 512), torch.randn(256, 512)
    labels = torch.randint(0, num_classes, (256,))
    words = torch.randn(num_classes, 300)
    cfg = LossConfig(variant=variant)
    for i in range(steps + 5):
        if i == 5:
            started = time.perf_counter()
        out = compute_losses(model, audio, visual, labels, words, cfg)
        opt.zero_grad()
        out.total.backward()
        opt.step()
    return (time.perf_counter() - started) / steps * 1000


def scoring_ms(n: int, num_classes: int) -> float:
    model = CoordinateGeneralize(ModelConfig())
    audio, visual, words = torch.randn(n, 512), torch.randn(n, 512), torch.randn(num_classes, 300)
    started = time.perf_counter()
    predict_scores(model, audio, visual, words, batch_size=2048)
    return (time.perf_counter() - started) * 1000


def protocol_seconds(cache: Path, splits: Path, out: Path, epochs: int) -> tuple[float, dict]:
    started = time.perf_counter()
    code = cli_train.main(
        ["--cache", str(cache), "--splits", str(splits), "--out", str(out), "--epochs", str(epochs), "--device", "cpu"]
    )
    seconds = time.perf_counter() - started
    if code:
        raise SystemExit(f"avzsl-train failed with exit code {code}")
    return seconds, json.loads((out / "metrics.json").read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="ucf,vggsound")
    parser.add_argument("--epochs", type=int, default=50, help="stage-1 epochs for the UCF-size protocol")
    parser.add_argument("--vggsound-epochs", type=int, default=2, help="stage-1 epochs for the VGGSound-size run")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.sizes.split(","):
            spec = SIZES[name]
            root = Path(tmp) / name
            t0 = time.perf_counter()
            make_synthetic_cache(root / "cache", root / "splits", spec)
            build_s = time.perf_counter() - t0
            seen = spec.num_seen
            base = step_ms(seen, "cls")
            kd = step_ms(seen, "cls+kd")
            full = step_ms(seen, "cls+kd+mask")
            n_val = round(spec.videos_per_class * (seen * 0.15 * 0.85 + spec.num_val_unseen * 0.85))
            score = scoring_ms(n_val, seen + spec.num_val_unseen)
            epochs = args.epochs if name == "ucf" else args.vggsound_epochs
            seconds, metrics = protocol_seconds(root / "cache", root / "splits", root / "run", epochs)
            e_star = metrics["epoch"]
            # Worst case for the full protocol: e* = last epoch, so stage 2 runs every epoch too.
            per_epoch = {}
            for stage in ("stage1", "stage2"):
                lines = (root / "run" / stage / "epochs.jsonl").read_text().splitlines()
                per_epoch[stage] = [json.loads(line)["seconds"] for line in lines]
            full_estimate = args.epochs * sum(sum(v) / len(v) for v in per_epoch.values())
            rows.append((name, spec, build_s, base, kd, full, score, epochs, e_star, seconds, full_estimate, metrics))
    header = (
        f"{'size':<9}{'videos':>8}{'classes':>8}{'cache s':>9}{'cls ms':>8}{'+kd ms':>8}{'full ms':>9}"
        f"{'full/cls':>9}{'steps/s':>8}{'val score ms':>13}{'epochs':>7}{'e*':>4}{'protocol s':>11}"
        f"{'worst 50-ep s':>14}"
    )
    out = [f"threads: {torch.get_num_threads()}", header]
    for name, spec, build_s, base, kd, full, score, epochs, e_star, seconds, estimate, _metrics in rows:
        classes = spec.num_seen + spec.num_val_unseen + spec.num_test_unseen
        out.append(
            f"{name:<9}{classes * spec.videos_per_class:>8}{classes:>8}{build_s:>9.1f}{base:>8.1f}{kd:>8.1f}"
            f"{full:>9.1f}{full / base:>9.2f}{1000 / full:>8.1f}{score:>13.1f}{epochs:>7}{e_star:>4}{seconds:>11.1f}"
            f"{estimate:>14.0f}"
        )
    out.append("protocol s: measured wall time of avzsl-train (stage 1 + validation each epoch, stage 2 to e*, test).")
    out.append("worst 50-ep s: 50 x (stage-1 + stage-2 seconds per epoch), i.e. the protocol when e* = 50.")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
