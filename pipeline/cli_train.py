"""``avzsl-train``: run the two-stage GZSL protocol on a feature cache (resumable)."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from avzsl.pipeline.errors import USER_ERRORS, UserError, report_user_error
from avzsl.pipeline.helptext import HelpFormatter, add_version_option
from avzsl.pipeline.logs import discard_if_only_logs, missing_root, pick_device, setup_logging

_logger = logging.getLogger(__name__)

LOSS_VARIANTS = ("cls", "cls+kd", "cls+kd+mask")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avzsl-train",
        description=(
            "Train the Coordinate-and-Generalize model with the two-stage AV-GZSL protocol: stage 1 on "
            "stage_1_train with per-epoch validation (best-H epoch e* and calibration gamma* chosen there), stage 2 "
            "retrained on stage_2_train for e* epochs, then the test evaluation. Re-running the same command resumes "
            "an interrupted run from its last checkpoint; a finished run says it is up to date."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--cache", required=True, type=Path, help="feature cache directory (avzsl-extract/import)")
    parser.add_argument(
        "--out", required=True, type=Path, help="run directory (created; holds checkpoints and results)"
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--splits", type=Path, help="split folder in the reference format (stage_*.txt + stage_*.csv)")
    where.add_argument(
        "--benchmark", choices=("ucf", "activitynet", "vggsound"), help="use the built-in benchmark split files"
    )
    parser.add_argument("--split", default="main", choices=("main", "cls"), help="benchmark split variant")
    parser.add_argument("--seed", type=int, default=42, help="random seed (the reference uses 42)")
    parser.add_argument("--epochs", type=int, default=50, help="stage-1 epochs (stage 2 trains for the best one)")
    parser.add_argument(
        "--batches-per-epoch",
        type=int,
        default=None,
        help="class-balanced batches per epoch (default: one pass, ceil(N_train/batch); the reference uses 500)",
    )
    parser.add_argument("--batch-size", type=int, default=256, help="batch size (paper: 256)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (paper: 1e-3)")
    parser.add_argument("--loss", default="cls+kd+mask", choices=LOSS_VARIANTS, help="loss variant (Table 3 ablation)")
    parser.add_argument(
        "--mask-ratio",
        type=float,
        default=None,
        help="proportion rho of pseudo-mask elements set to 1 (default: paper's per-benchmark value, else 0.1)",
    )
    parser.add_argument("--lambda-kd", type=float, default=1.0, help="weight of the distillation loss (lambda_1)")
    parser.add_argument("--lambda-mask", type=float, default=0.5, help="weight of the mask loss (lambda_2)")
    parser.add_argument("--topk-by", default="magnitude", choices=("magnitude", "value"), help="pseudo-mask top-k on")
    parser.add_argument("--mask-norm", default="l2", choices=("l2", "l1", "mse"), help="norm of the mask loss")
    parser.add_argument(
        "--pseudo-mask-scope", default="sample", choices=("sample", "batch"), help="top-k per sample or per batch"
    )
    parser.add_argument(
        "--standardize-features",
        action="store_true",
        help="z-score input features with training-set statistics (not in the paper; for features with a large "
        "common offset, e.g. random encoder weights)",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    parser.add_argument("--overwrite", action="store_true", help="replace a run with a different configuration")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    add_version_option(parser)
    return parser


def config_from_args(args: argparse.Namespace):  # -> TrainConfig (import kept lazy: torch is slow to import)
    from avzsl.model.config import LossConfig
    from avzsl.pipeline.train_config import PAPER_MASK_RATIO, TrainConfig

    ratio = args.mask_ratio
    if ratio is None:
        ratio = PAPER_MASK_RATIO.get(args.benchmark or "", 0.1)
    loss = LossConfig(
        variant=args.loss,
        lambda_kd=args.lambda_kd,
        lambda_mask=args.lambda_mask,
        mask_ratio=ratio,
        topk_by=args.topk_by,
        mask_norm=args.mask_norm,
        pseudo_mask_scope=args.pseudo_mask_scope,
    )
    cfg = TrainConfig(
        cache=str(args.cache),
        splits=str(args.splits) if args.splits else None,
        benchmark=args.benchmark,
        split_variant=args.split,
        seed=args.seed,
        epochs=args.epochs,
        batches_per_epoch=args.batches_per_epoch,
        batch_size=args.batch_size,
        lr=args.lr,
        standardize_features=args.standardize_features,
    )
    return replace(cfg, loss=loss)


def format_metrics(metrics: dict) -> str:
    """The paper-style result line."""
    return (
        f"S {metrics['S']:.2f}  U {metrics['U']:.2f}  H {metrics['H']:.2f}  ZSL {metrics['ZSL']:.2f}"
        f"  (epoch {metrics['epoch']}, calibration {metrics['beta']:.4g})"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 2 user error)."""
    args = build_parser().parse_args(argv)
    # Options and paths are checked before RUN/train.log is created: failed usage leaves no output folder behind.
    try:
        if not args.cache.is_dir():
            raise UserError(f"{args.cache}: --cache folder not found")
        if args.splits is not None and not args.splits.is_dir():
            raise UserError(f"{args.splits}: --splits folder not found (docs/splits.md describes one)")
        if args.out.exists() and not args.out.is_dir():
            raise UserError(f"{args.out}: --out exists and is not a folder")
        cfg = config_from_args(args)
    except USER_ERRORS as exc:
        setup_logging(verbose=args.verbose)
        return report_user_error(exc)
    created = missing_root(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    setup_logging(args.out / "train.log", verbose=args.verbose)
    from avzsl.pipeline.lock import DirectoryLock
    from avzsl.pipeline.protocol import train_run

    try:
        with DirectoryLock(args.out, "run directory"):
            metrics = train_run(cfg, args.out, pick_device(args.device), overwrite=args.overwrite)
    except USER_ERRORS as exc:
        code = report_user_error(exc)
        discard_if_only_logs(created)
        return code
    sys.stdout.write(f"test: {format_metrics(metrics)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
