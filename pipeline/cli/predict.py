"""``avzsl-predict``: rank any class names for raw videos with a trained run, or with no run (``--zero-shot``)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from avzsl.extractors.encoders.weights import CheckpointError
from avzsl.pipeline.cli.errors import report_user_error, user_errors
from avzsl.pipeline.cli.explain_view import explain_text
from avzsl.pipeline.cli.helptext import HelpFormatter, add_version_option
from avzsl.pipeline.cli.logs import pick_device, setup_logging
from avzsl.pipeline.cli.option_words import in_flag_words
from avzsl.pipeline.cli.options import read_phrases
from avzsl.pipeline.core.errors import UserError

_logger = logging.getLogger(__name__)


ZERO_SHOT_ENCODER_HELP = (
    "--zero-shot scorer: effnet_lite0_aisfx (ConSE through the packaged EfficientNet-Lite0's ImageNet labels and the "
    "bundled GloVe vectors: installed weights, no option, nothing downloaded), clip_clap or clip_clap_per_second "
    "(the frozen CLIP/CLAP towers: need --clip-checkpoint and --clap-checkpoint); default: clip_clap when a CLIP/CLAP "
    "checkpoint is given, else effnet_lite0_aisfx"
)


def add_zero_shot_arguments(parser: argparse.ArgumentParser) -> None:
    """``--zero-shot`` (no run: a training-free scorer) and the CLIP/CLAP weight options."""
    parser.add_argument(
        "--zero-shot", action="store_true",
        help="no run: rank the classes with a training-free scorer (ConSE on the packaged encoders, or the frozen "
        "CLIP/CLAP text towers; see --encoder)",
    )
    parser.add_argument("--clip-checkpoint", type=Path,
                        help="CLIP weights open_clip_pytorch_model.bin: for a run on a clip_clap cache, or --zero-shot "
                        "with CLIP/CLAP")
    parser.add_argument("--clap-checkpoint", type=Path,
                        help="CLAP folder (laion/clap-htsat-unfused): for a run on a clip_clap cache, or --zero-shot "
                        "with CLIP/CLAP")
    parser.add_argument("--encoder", default=None, help=ZERO_SHOT_ENCODER_HELP)
    parser.add_argument("--text-templates", default="plain", help="--zero-shot CLIP/CLAP: plain, ucf, activitynet, "
                        "vggsound")
    parser.add_argument("--audio-weight", type=float, default=0.5,
                        help="--zero-shot CLIP/CLAP: weight of the audio cosine (ConSE: visual only, aiSFX has no "
                        "label names)")
    parser.add_argument("--top-labels", type=int, default=10,
                        help="--zero-shot ConSE: the T most probable ImageNet labels combined")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avzsl-predict",
        description=(
            "Classify raw videos with a run trained by avzsl-train, against any class names (seen, unseen or new). "
            "Each video is decoded and encoded exactly as the run's feature cache was (same encoder, weights, "
            "decoder and 1-s window schedule; the feature is the mean over windows), the class names are embedded "
            "with the same word vectors, and the model's scores are ranked; the output gives p, log p, the calibration "
            "shift and the ranking score. Seen classes of the run are marked; the run's calibration gamma is not "
            "subtracted by default (--seen-calibration). "
            "Weights: a run on SeLaVi features needs --selavi-checkpoint, on CLIP/CLAP features --clip-checkpoint and "
            "--clap-checkpoint; a run on the packaged effnet_lite0_aisfx encoders (avzsl-demo) needs no weight "
            "option. Exit code: 0 when at least one video was predicted, 1 when none could be, 2 for a usage error "
            "(bad run, weights or word vectors that differ from the run's)."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "videos",
        nargs="+",
        metavar="INPUT",
        help="what to classify: video files, folders of videos (searched recursively, class folders or not), or "
        "feature caches (folders with cache.json, e.g. from avzsl-extract on an unlabeled folder; scored from the "
        "stored features without decoding); a path that does not exist gets one error line, like an unreadable file",
    )
    parser.add_argument("--run", type=Path, help="run directory written by avzsl-train (or --zero-shot)")
    add_zero_shot_arguments(parser)
    classes = parser.add_mutually_exclusive_group(required=True)
    classes.add_argument("--classes", help='candidate class names, comma-separated ("playing piano,dog barking")')
    classes.add_argument(
        "--classes-file", type=Path, help="candidate class names, one per line (# comments and blank lines ignored)"
    )
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument(
        "--selavi-checkpoint",
        type=Path,
        help="the SeLaVi checkpoint the run's cache was extracted with (sha256 checked); only for runs on SeLaVi "
        "features (runs on effnet_lite0_aisfx need no weight option: its weights are installed package data)",
    )
    weights.add_argument(
        "--random-weights",
        action="store_true",
        help="the run's cache used random encoder weights (tests only; the recorded seed is reused)",
    )
    parser.add_argument(
        "--word-vectors",
        default=None,
        help="the word2vec/fastText file the run's class names were embedded with (None: the bundled GloVe)",
    )
    parser.add_argument(
        "--oov",
        default=None,
        choices=("error", "skip", "split"),
        help="candidate-name words missing from the word vectors: fail listing all, skip them, or split compound "
        "words (default: the policy the run's cache was extracted with)",
    )
    parser.add_argument(
        "--class-phrases",
        default=None,
        help="phrase to embed per candidate class: a CSV with columns original,manual, or a benchmark name "
        "(ucf, activitynet, vggsound) for its released name map (default: the cache's phrase for a class of the "
        "run, else the class name split into words)",
    )
    parser.add_argument(
        "--seen-calibration",
        default="auto",
        choices=("auto", "full", "off"),
        help="calibrated stacking of seen candidates: auto subtracts nothing (the run's gamma, chosen on validation "
        "clips, lowered top-1 on new media for every candidate list measured: docs/predict.md); full subtracts the "
        "run's gamma from every seen candidate (warning when the candidates are not the run's benchmark list, its "
        "test classes); off subtracts nothing",
    )
    parser.add_argument("--top", type=int, default=5, help="predictions shown per video")
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--json", action="store_true",
                      help="print one JSON document instead of tables (with the branch scores and window support)")
    view.add_argument("--explain", action="store_true",
                      help="tables with what the visual branch saw and the audio branch heard per class, and a "
                      "per-second strip of the windows that support each class")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    parser.add_argument("--workers", type=int, default=1, help="decoding worker processes (0: decode inline)")
    parser.add_argument(
        "--batch-size", type=int, default=None,
        help="windows per encoder forward; memory grows with it, ~200 MiB per window on CPU (docs/memory.md) "
        "(default: 16 on CUDA, 4 on CPU)",
    )
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    add_version_option(parser)
    return parser


def table_text(results: dict, header: str | None, random_weights: bool) -> str:
    """Human-readable output: what the score is, then per video a ranked table, or one error line.

    Args:
        results: path -> VideoPrediction or VideoFailure (from :meth:`Predictor.predict`).
        header: what the ranking score is (``CalibrationPlan.score_is()``); None: taken from the predictions.
        random_weights: print the meaningless-predictions warning first.
    """
    from avzsl.pipeline.predict.predictor import RANDOM_PREDICTIONS_WARNING  # lazy: pulls in torch; --help stays cheap
    from avzsl.pipeline.predict.ranking import VideoFailure  # lazy: pulls in torch; --help stays cheap

    lines: list[str] = []
    if random_weights:
        lines.append(f"WARNING: {RANDOM_PREDICTIONS_WARNING}")
    predicted = [item for item in results.values() if not isinstance(item, VideoFailure)]
    header = header or next((item.score_is for item in predicted if item.score_is), None)
    if header:
        lines.append(f"score = {header}")
    ranked = [r for item in predicted for r in item.predictions]
    width = max([5, *(len(r.class_name) for r in ranked)])
    with_p = any(r.probability is not None for r in ranked)
    for path, item in results.items():
        if isinstance(item, VideoFailure):
            lines.append(f"{path}: ERROR {item.message()}")
            continue
        plural = "" if item.windows == 1 else "s"
        lines.append(f"{path} ({item.windows} window{plural})" if item.windows else f"{path} (cached feature)")
        columns = f"{'p':>7}  {'log p':>8}  {'shift':>7}  " if with_p else ""
        lines.append(f"  {'rank':>4}  {'class':<{width}}  {columns}{'score':>8}  seen")
        for rank, r in enumerate(item.predictions, start=1):
            marker = "seen" if r.seen else "unseen"
            values = ""
            if with_p:
                p = "-" if r.probability is None else f"{r.probability:.4f}"
                log_p = "-" if r.log_p is None else f"{r.log_p:.4f}"
                values = f"{p:>7}  {log_p:>8}  {r.shift:>7.4g}  "
            lines.append(f"  {rank:>4}  {r.class_name:<{width}}  {values}{r.score:>8.4f}  {marker}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 some video predicted, 1 none, 2 user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(verbose=args.verbose)
    if args.top < 1:
        parser.error("--top must be >= 1")
    if args.zero_shot != (args.run is None):
        parser.error("give either --run RUN or --zero-shot")
    if args.batch_size is not None and args.batch_size < 1:
        parser.error("--batch-size must be >= 1")
    from avzsl.pipeline.predict.inputs import resolve_inputs  # lazy: pulls in torch; --help stays cheap

    try:
        if args.zero_shot:
            try:
                return _zero_shot(args, _class_names(args))
            except CheckpointError as exc:
                return report_user_error(in_flag_words(exc))
        # Inputs, class names and phrase maps first: a missing video is reported before any model loads.
        inputs = resolve_inputs(args.videos)
        names = _class_names(args)
        if not inputs.videos and not inputs.caches:  # nothing to load a model for: every input is missing
            return _write_results(args, missing_failures(inputs.missing))
        phrases = read_phrases(args.class_phrases)
        if args.selavi_checkpoint is not None and not args.selavi_checkpoint.is_file():
            raise FileNotFoundError(2, "--selavi-checkpoint file not found", str(args.selavi_checkpoint))
    except user_errors() as exc:
        return report_user_error(exc)
    from avzsl.extractors.stream import default_batch_size  # lazy: pulls in torch; --help stays cheap
    from avzsl.pipeline.predict.inputs import predict_caches  # lazy: pulls in torch; --help stays cheap
    from avzsl.pipeline.predict.predictor import Predictor  # lazy: pulls in torch; --help stays cheap

    try:
        predictor = Predictor(
            args.run,
            selavi_checkpoint=args.selavi_checkpoint,
            random_weights=args.random_weights,
            word_vectors=args.word_vectors,
            device=pick_device(args.device),
            clip_checkpoint=args.clip_checkpoint,
            clap_checkpoint=args.clap_checkpoint,
            oov=args.oov,
            phrases=phrases,
            encode_videos=bool(inputs.videos),
        )
        candidates = predictor.candidates(names)
        predictor.release_word_vectors()  # embedded: the vectors are not held while videos are encoded
        plan = predictor.calibrate(candidates, args.seen_calibration)
        results = predict_caches(predictor, inputs.caches, candidates, args.seen_calibration, args.top)
        if inputs.videos:
            results.update(
                predictor.predict(
                    inputs.videos,
                    candidates,
                    top=args.top,
                    calibration=args.seen_calibration,
                    workers=args.workers,
                    batch_size=args.batch_size or default_batch_size(predictor.device),
                )
            )
    except (*user_errors(), CheckpointError) as exc:
        return report_user_error(in_flag_words(exc))
    results.update(missing_failures(inputs.missing))
    return _write_results(args, results, plan.score_is(), predictor.request.random_weights)


def _zero_shot(args: argparse.Namespace, names: list[str]) -> int:
    from avzsl.extractors.stream import default_batch_size  # lazy: pulls in torch; --help stays cheap
    from avzsl.pipeline.predict.conse import CONSE_ENCODERS, predict_conse  # lazy: pulls in torch; --help stays cheap
    from avzsl.pipeline.predict.inputs import resolve_inputs  # lazy: pulls in torch; --help stays cheap
    from avzsl.pipeline.predict.zero_shot import predict_zero_shot  # lazy: pulls in torch; --help stays cheap

    device = pick_device(args.device)
    encoder = args.encoder or ("clip_clap" if args.clip_checkpoint or args.clap_checkpoint else CONSE_ENCODERS[0])
    inputs = resolve_inputs(args.videos)
    if inputs.caches:
        raise UserError(f"--zero-shot scores videos, not feature caches: {inputs.caches[0]}")
    batch_size = args.batch_size or default_batch_size(device)
    results: dict = {}
    if inputs.videos and encoder in CONSE_ENCODERS:
        if args.clip_checkpoint or args.clap_checkpoint or args.selavi_checkpoint:
            raise UserError(f"--encoder {encoder} takes its weights from installed packages: drop the checkpoint "
                            "options")
        results = predict_conse(inputs.videos, names, args.random_weights, args.top_labels, args.top, args.workers,
                                batch_size, device, oov=args.oov or "skip")
    elif inputs.videos:
        results = predict_zero_shot(
            inputs.videos, names, args.clip_checkpoint, args.clap_checkpoint, args.random_weights, encoder,
            args.text_templates, args.audio_weight, args.top, args.workers, batch_size, device,
        )
    results.update(missing_failures(inputs.missing))
    return _write_results(args, results, None, args.random_weights)


def missing_failures(paths: list[str]) -> dict:
    """One ``not_a_file`` failure per input path that does not exist."""
    from avzsl.pipeline.predict.ranking import VideoFailure  # lazy: pulls in torch; --help stays cheap

    return {path: VideoFailure("not_a_file", "no such file or folder") for path in paths}


def _write_results(args: argparse.Namespace, results: dict, header: str | None = None,
                   random_weights: bool = False) -> int:
    """Write ``results`` (JSON, or tables under ``header``); 0 when a video was predicted, else 1."""
    from avzsl.pipeline.predict.explain import results_document  # lazy: pulls in torch; --help stays cheap
    from avzsl.pipeline.predict.ranking import VideoPrediction  # lazy: pulls in torch; --help stays cheap

    if args.json:
        sys.stdout.write(json.dumps(results_document(results), indent=2) + "\n")
    else:
        sys.stdout.write(_text(args, results, header, random_weights))
    predicted = sum(isinstance(r, VideoPrediction) for r in results.values())
    _logger.info("%d of %d video(s) predicted", predicted, len(results))
    return 0 if predicted else 1


def _text(args: argparse.Namespace, results: dict, header: str | None, random_weights: bool) -> str:
    """The tables, or the ``--explain`` view, under ``header`` (what the score is)."""
    if not args.explain:
        return table_text(results, header, random_weights)
    from avzsl.pipeline.predict.predictor import RANDOM_PREDICTIONS_WARNING  # lazy: pulls in torch; --help stays cheap

    return explain_text(results, header, random_weights, RANDOM_PREDICTIONS_WARNING)


def _class_names(args: argparse.Namespace) -> list[str]:
    """The candidate names of ``--classes`` or ``--classes-file``."""
    from avzsl.pipeline.predict.ranking import (  # lazy: pulls in torch; --help stays cheap
        parse_class_list,
        read_class_file,
    )

    return parse_class_list(args.classes) if args.classes is not None else read_class_file(args.classes_file)


if __name__ == "__main__":
    sys.exit(main())
