"""``avzsl-train``: run the two-stage GZSL protocol on a feature cache (resumable)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from avzsl.data_manifests import BENCHMARKS
from avzsl.pipeline.cli.errors import report_user_error, user_errors
from avzsl.pipeline.cli.helptext import HelpFormatter, add_version_option
from avzsl.pipeline.cli.logs import discard_if_only_logs, missing_root, pick_device, setup_logging
from avzsl.pipeline.core.errors import InvalidValueError, UserError
from avzsl.pipeline.core.lock import DirectoryLock
from avzsl.pipeline.run.layout import TRAIN_LOG

_logger = logging.getLogger(__name__)

LOSS_VARIANTS = ("cls", "cls+kd", "cls+kd+mask")


class _ListMethods(argparse.Action):
    """``--list-methods``: print the registry and exit, before the required options are checked."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001 - argparse API
        sys.stdout.write(list_methods_text())
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avzsl-train",
        description=(
            "Train a registered method (default: Coordinate and Generalize) with the two-stage AV-GZSL protocol: "
            "stage 1 on stage_1_train with per-epoch validation (best-H epoch e* and calibration gamma* chosen "
            "there), stage 2 retrained on stage_2_train for e* epochs, then the test evaluation. Re-running the same "
            "command resumes an interrupted run from its last checkpoint; a finished run says it is up to date."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--list-methods", action=_ListMethods, nargs=0, help="list the registered methods and exit")
    # Required in argparse's sense, so the usage line shows them as such (--list-methods exits before the check).
    parser.add_argument("--cache", type=Path, required=True, help="feature cache directory (avzsl-extract/import)")
    parser.add_argument("--out", type=Path, required=True,
                        help="run directory (created; holds checkpoints and results)")
    parser.add_argument("--method", default="coordinate_generalize",
                        help="registered training method (see --list-methods)")
    parser.add_argument("--method-option", action="append", default=[], metavar="KEY=VALUE",
                        help="set one option of the method (repeatable; values parsed as JSON, else text)")
    # default None: the method's DEFAULT_PRESET decides (model/coordinate_generalize.py imports torch, which
    # --help must not); the names are spelled here for the same reason.
    parser.add_argument("--preset", default=None, choices=("recommended", "paper"),
                        help="named configuration of coordinate_generalize: 'paper' = the literal reading, "
                        "'recommended' = open choices decided on validation (docs/method.md) (default: recommended)")
    parser.add_argument("--calibration", default="exact", choices=("exact", "reference", "legacy"),
                        help="how gamma is chosen on stage-1 validation: exact optimum, the AVCA reference grid "
                        "linspace(0,3,16), or avzsl's former [0,1] grid on plain scores")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--splits", type=Path, help="split folder in the reference format (stage_*.txt + stage_*.csv)")
    where.add_argument(
        "--benchmark", choices=BENCHMARKS, help="use the built-in benchmark split files"
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
    parser.add_argument("--patience", type=int, default=None,
                        help="stop stage 1 once validation H has not improved for this many epochs (default: train "
                        "all --epochs); stage 2 still trains the best epoch's count")
    parser.add_argument("--batch-size", type=int, default=256, help="batch size (paper: 256)")
    parser.add_argument("--lr", type=float, default=1e-3,
                        help="learning rate of the method's optimiser (paper: Adam, 1e-3; recommended: AdamW, 1e-3)")
    parser.add_argument("--loss", default=None, choices=LOSS_VARIANTS,
                        help="loss variant (Table 3 ablation) (default: cls+kd+mask)")
    parser.add_argument(
        "--mask-ratio",
        type=float,
        default=None,
        help="proportion rho of pseudo-mask elements set to 1 (default: paper's per-benchmark value, else 0.1)",
    )
    # These default to None so the preset decides; the help states the recommended/paper value.
    parser.add_argument("--lambda-kd", type=float, default=None,
                        help="weight lambda_1 of the distillation loss (default: 1)")
    parser.add_argument("--lambda-mask", type=float, default=None,
                        help="weight lambda_2 of the mask loss (default: 0.5)")
    parser.add_argument("--topk-by", default=None, choices=("magnitude", "value"),
                        help="pseudo-mask top-k on the absolute or the signed gradient (default: magnitude)")
    parser.add_argument("--mask-norm", default=None, choices=("l2", "l1", "mse"),
                        help="norm of the mask loss (default: l2)")
    parser.add_argument("--pseudo-mask-scope", default=None, choices=("sample", "batch"),
                        help="top-k per sample or per batch (default: sample)")
    parser.add_argument(
        "--standardize-features",
        action="store_const", const=True, default=None,
        help="z-score input features with training-set statistics (not in the paper; for features with a large "
        "common offset, e.g. random encoder weights)",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    parser.add_argument("--overwrite", action="store_true", help="replace a run with a different configuration")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    add_version_option(parser)
    return parser


# coordinate_generalize options set by the dedicated flags (flag attribute -> option name).
_CG_FLAGS = {"loss": "variant", "lambda_kd": "lambda_kd", "lambda_mask": "lambda_mask", "topk_by": "topk_by",
             "mask_norm": "mask_norm", "pseudo_mask_scope": "pseudo_mask_scope",
             "standardize_features": "standardize", "mask_ratio": "mask_ratio"}


def parse_option(text: str) -> tuple[str, object]:
    """``key=value`` -> (key, value parsed as JSON when it is JSON, else the text)."""
    import json

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise InvalidValueError(f"--method-option expects KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def method_options_from_args(args: argparse.Namespace) -> dict:
    """The method's options: the preset (coordinate_generalize), the dedicated flags, then --method-option."""
    from avzsl.pipeline.run.config import PAPER_MASK_RATIO  # lazy: pulls in torch; --help stays cheap

    flags = {opt: getattr(args, attr) for attr, opt in _CG_FLAGS.items() if getattr(args, attr) is not None}
    options: dict = {}
    if args.method == "coordinate_generalize":
        from avzsl.model.coordinate_generalize import DEFAULT_PRESET, PRESETS  # imports torch: --help stays cheap

        options.update(PRESETS[args.preset or DEFAULT_PRESET])
        options["mask_ratio"] = PAPER_MASK_RATIO.get(args.benchmark or "", 0.1)
        options.update(flags)
    elif flags:
        given = ", ".join("--" + a.replace("_", "-") for a in _CG_FLAGS if getattr(args, a) is not None)
        raise InvalidValueError(
            f"{given} set(s) options of coordinate_generalize, not of {args.method!r}; use --method-option"
        )
    options.update(dict(parse_option(t) for t in args.method_option))
    return options


def config_from_args(args: argparse.Namespace):  # -> TrainConfig (import kept lazy: torch is slow to import)
    from avzsl.pipeline.run.config import TrainConfig  # lazy: pulls in torch; --help stays cheap

    if args.cache is None or args.out is None or (args.splits is None) == (args.benchmark is None):
        raise InvalidValueError("avzsl-train needs --cache, --out and one of --splits or --benchmark")
    return TrainConfig(
        cache=str(args.cache),
        splits=str(args.splits) if args.splits else None,
        benchmark=args.benchmark,
        split_variant=args.split,
        seed=args.seed,
        epochs=args.epochs,
        batches_per_epoch=args.batches_per_epoch,
        batch_size=args.batch_size,
        lr=args.lr,
        method=args.method,
        method_options=method_options_from_args(args),
        calibration=args.calibration,
        patience=args.patience,
    )


def list_methods_text() -> str:
    """One line per registered method: name, flags and description."""
    from avzsl.model.registry import get_method, list_methods  # lazy: pulls in torch; --help stays cheap

    lines = []
    for name in list_methods():
        entry = get_method(name)
        tags = [t for t, on in (("sequences", entry.needs_sequences), ("no training", not entry.trainable)) if on]
        lines.append(f"{name:24s} {'[' + ', '.join(tags) + '] ' if tags else ''}{entry.description}")
    return "\n".join(lines) + "\n"


def format_metrics(metrics: dict) -> str:
    """The paper-style result line."""
    return (
        f"S {metrics['S']:.2f}  U {metrics['U']:.2f}  H {metrics['H']:.2f}  ZSL {metrics['ZSL']:.2f}"
        f"  (epoch {metrics['epoch']}, calibration {metrics.get('gamma', metrics.get('beta', float('nan'))):.4g})"
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
    except user_errors() as exc:
        setup_logging(verbose=args.verbose)
        return report_user_error(exc)
    created = missing_root(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    setup_logging(args.out / TRAIN_LOG, verbose=args.verbose)
    from avzsl.pipeline.train.protocol import train_run  # lazy: pulls in torch; --help stays cheap

    try:
        with DirectoryLock(args.out, "run directory"):
            metrics = train_run(cfg, args.out, pick_device(args.device), overwrite=args.overwrite)
    except user_errors() as exc:
        code = report_user_error(exc)
        discard_if_only_logs(created)
        return code
    sys.stdout.write(f"test: {format_metrics(metrics)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
