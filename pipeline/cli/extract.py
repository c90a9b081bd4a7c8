"""``avzsl-extract``: raw videos -> cached SeLaVi features and class-name embeddings (resumable, distributable)."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections import Counter
from pathlib import Path

from avzsl.data_manifests import BENCHMARKS
from avzsl.extractors.choices import DECODERS, SCHEDULES
from avzsl.extractors.encoders.registry import build_encoder, get_encoder_spec, list_encoders
from avzsl.extractors.encoders.weights import CheckpointError
from avzsl.pipeline.cli.errors import report_user_error, user_errors
from avzsl.pipeline.cli.helptext import HelpFormatter, add_version_option
from avzsl.pipeline.cli.logs import discard_if_only_logs, missing_root, setup_logging
from avzsl.pipeline.cli.option_words import check_weight_options, in_flag_words, weight_files
from avzsl.pipeline.cli.options import add_foundation_arguments, read_phrases
from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.data.video_list import UNLABELED, discover_folder, read_manifest
from avzsl.pipeline.extract.world import resolve_world

_logger = logging.getLogger(__name__)


class _ListEncoders(argparse.Action):
    """``--list-encoders``: print the registry and exit, before the required options are checked."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001 - argparse API

        for name in list_encoders():
            spec = get_encoder_spec(name)
            sys.stdout.write(f"{name}\t{spec.to_dict().get('weights_file', '')}\n")
        parser.exit(0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avzsl-extract",
        description=(
            "Decode videos (PyAV, or decord), run the SeLaVi visual (R(2+1)D-18) and audio (ResNet-9) encoders on "
            "1-s windows, embed the class names with word vectors (gensim), and write HDF5 feature shards. "
            "Re-running the same command skips complete shards; bad videos are recorded in CACHE/failures.csv with "
            "their reason and never replaced. Several processes split the shards by rank (--rank/--world-size, "
            "torchrun or Slurm environment)."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--videos",
        type=Path,
        required=True,
        help="videos folder: <DIR>/<ClassName>/<video> (UCF101 layout), or a flat folder of videos without classes "
        "(features only: the cache records them as unlabeled)",
    )
    parser.add_argument("--out", type=Path, required=True, help="cache directory to write")
    parser.add_argument(
        "--manifest",
        type=Path,
        help="CSV with columns path,class_name (paths relative to --videos) for any other layout",
    )
    parser.add_argument(
        "--allow-outside", action="store_true", help="let manifest paths point outside --videos (off: refused)"
    )
    weights = parser.add_mutually_exclusive_group()
    weights.add_argument(
        "--selavi-checkpoint", type=Path, help="SeLaVi checkpoint selavi_vgg_sound.pth (see docs/encoders.md)"
    )
    weights.add_argument(
        "--random-weights",
        action="store_true",
        help="use randomly initialised encoders (pipeline tests and demos only; the cache records it)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of --random-weights")
    parser.add_argument(
        "--encoder",
        default="selavi_vggsound",
        help="encoder registry name (selavi_vggsound, clip_clap, effnet_lite0_aisfx, ...)",
    )
    add_foundation_arguments(parser)
    parser.add_argument(
        "--list-encoders", action=_ListEncoders, nargs=0, help="list registered encoders and exit"
    )
    parser.add_argument(
        "--word-vectors",
        default=None,
        help="word2vec (binary/text) or fastText .bin file for class names (default: bundled GloVe 6B 50-d)",
    )
    parser.add_argument(
        "--oov",
        default="error",
        choices=("error", "skip", "split"),
        help="class-name words missing from the vectors: fail listing all, skip them, or split compound words "
        "into known words (pullups -> pull ups; every split is logged and recorded) and fail on the rest",
    )
    parser.add_argument(
        "--class-phrases",
        default=None,
        help="phrase to embed per class: a CSV with columns original,manual, or a benchmark name "
        "(ucf, activitynet, vggsound) for its released name map",
    )
    parser.add_argument("--decoder", default="pyav", choices=DECODERS, help="video decoder")
    parser.add_argument(
        "--windows",
        default="clean",
        choices=SCHEDULES,
        help="window schedule: 1-s stride, or the reference formula (parity with released features)",
    )
    parser.add_argument("--device", default="auto", help="auto (cuda:LOCAL_RANK when CUDA is present), cpu, cuda:N")
    parser.add_argument("--workers", type=int, default=2, help="decoding worker processes (0: decode inline)")
    parser.add_argument(
        "--batch-size", type=int, default=None,
        help="windows per encoder forward; memory grows with it, ~200 MiB per window on CPU (docs/memory.md) "
        "(default: 16 on CUDA, 4 on CPU)",
    )
    parser.add_argument("--probe-jobs", type=int, default=4, help="parallel probes (joblib threads)")
    parser.add_argument("--shard-size", type=int, default=256, help="videos per shard (unit of resume)")
    parser.add_argument(
        "--no-sequences", action="store_true", help="store only the per-video mean, not per-window features"
    )
    parser.add_argument("--rank", type=int, default=None, help="this process's rank (with --world-size)")
    parser.add_argument("--world-size", type=int, default=None, help="number of extraction processes")
    parser.add_argument("--overwrite", action="store_true", help="replace a cache made with different settings")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    add_version_option(parser)
    return parser


def embed_with_towers(args: argparse.Namespace, encoder: str) -> bool:
    """Whether class names go through the text towers (``--class-embedder``, ``auto`` by encoder family)."""
    if args.class_embedder == "auto":
        return get_encoder_spec(encoder).text_towers
    return args.class_embedder == "text_towers"


def tower_embedder(args: argparse.Namespace, encoders):  # noqa: ANN001, ANN201 - ClipClapEncoders -> embedder
    """The text-tower embedder of ``--text-templates`` (``plain`` or a benchmark name)."""
    from avzsl.extractors.text.text_towers import TextTowerEmbedder  # lazy: pulls in numpy; --help stays cheap

    if not encoders.spec.text_towers:
        raise UserError(f"--class-embedder text_towers needs CLIP/CLAP encoders, not {encoders.spec.name}")
    name = args.text_templates
    visual, audio = ("plain", "plain") if name == "plain" else (f"{name}_visual", f"{name}_audio")
    try:
        return TextTowerEmbedder(encoders, visual, audio)
    except KeyError as exc:
        raise UserError(f"--text-templates {name!r}: {exc.args[0]}") from exc


def check_arguments(args: argparse.Namespace) -> None:
    """Refuse unusable arguments in CLI terms before any video is probed or any model or vector file is loaded.

    Raises:
        UserError: no weights option, a checkpoint, videos folder, manifest, word-vector or phrase file that does
            not exist, an output path that is a file, or a non-positive size.
    """
    check_weight_options(args)
    if not args.videos.is_dir():
        raise UserError(f"{args.videos}: --videos folder not found")
    if args.manifest is not None and not args.manifest.is_file():
        raise UserError(f"{args.manifest}: --manifest file not found")
    if args.word_vectors not in (None, "glove") and not Path(args.word_vectors).is_file():
        raise UserError(f"{args.word_vectors}: --word-vectors file not found")
    phrases = args.class_phrases
    benchmarks = BENCHMARKS
    if phrases is not None and phrases.lower() not in benchmarks and not Path(phrases).is_file():
        raise UserError(f"{phrases}: --class-phrases file not found (or give ucf, activitynet or vggsound)")
    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"{args.out}: --out exists and is not a folder")
    for option in ("batch_size", "shard_size", "probe_jobs"):
        if getattr(args, option) is not None and getattr(args, option) < 1:
            raise UserError(f"--{option.replace('_', '-')} must be >= 1, got {getattr(args, option)}")
    if args.workers < 0:
        raise UserError(f"--workers must be >= 0, got {args.workers}")


def summary_text(summary, cache: Path, world) -> str:  # noqa: ANN001 - ExtractionSummary, WorldInfo
    """The final table printed after extraction."""
    done = summary.shards_done
    counts: Counter[str] = Counter()
    for r in done:
        counts["ok"] += r.ok
        counts.update(r.failures)
    videos = sum(r.videos for r in done)
    windows = sum(r.windows for r in done)
    seconds = max(summary.seconds, 1e-9)
    lines = [
        f"extraction summary (rank {world.rank} of {world.world_size}, {cache})",
        f"  shards   {summary.shards_total} planned, {len(done)} extracted now, "
        f"{summary.shards_skipped} complete before",
        f"  videos   {videos} processed now: {counts.get('ok', 0)} ok, {videos - counts.get('ok', 0)} failed",
    ]
    for status, n in sorted(counts.items()):
        if status != "ok":
            lines.append(f"           {status:<14} {n}")
    lines.append(f"  speed    {videos / seconds:.2f} videos/s, {windows / seconds:.2f} windows/s over {seconds:.1f} s")
    if summary.finalized is not None:
        statuses = summary.finalized["statuses"]
        failed = sum(n for s, n in statuses.items() if s != "ok")
        lines.append(
            f"  cache    complete: {summary.finalized['indexed']} videos indexed, {failed} failed "
            f"(listed in {cache / 'failures.csv'})"
        )
    else:
        lines.append("  cache    not finalized yet: other ranks still own incomplete shards")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 2 user error)."""
    args = build_parser().parse_args(argv)

    try:
        # Arguments, paths and weights first: nothing is probed, loaded or created before they are known to be usable.
        check_arguments(args)
        world = resolve_world(args.rank, args.world_size)
    except user_errors() as exc:
        setup_logging(verbose=args.verbose)
        return report_user_error(exc)
    created = missing_root(args.out)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        setup_logging(
            args.out / "logs" / f"rank-{world.rank}.log", args.verbose, world.rank if world.world_size > 1 else None
        )
    except OSError as exc:  # read-only or full output folder: say so in one line
        setup_logging(verbose=args.verbose)
        return report_user_error(exc)
    try:
        return _run(args, world)
    except (*user_errors(), CheckpointError) as exc:
        code = report_user_error(in_flag_words(exc))
        discard_if_only_logs(created)  # refused before anything was extracted: leave no empty cache folder
        return code


def _run(args: argparse.Namespace, world) -> int:  # noqa: ANN001 - WorldInfo
    import numpy as np
    import torch

    from avzsl.extractors.stream import default_batch_size  # lazy: pulls in torch; --help stays cheap
    from avzsl.extractors.text.class_names import ClassNameEmbedder  # lazy: pulls in numpy; --help stays cheap
    from avzsl.extractors.text.vectors import release_cached_vectors  # lazy: pulls in numpy; --help stays cheap
    from avzsl.pipeline.cache import ClassTable  # lazy: pulls in torch; --help stays cheap
    from avzsl.pipeline.extract.config import ExtractConfig, RunOptions  # lazy: pulls in torch; --help stays cheap
    from avzsl.pipeline.extract.ownership import check_shard_ownership  # lazy: pulls in torch; --help stays cheap
    from avzsl.pipeline.extract.stage import run_extraction  # lazy: pulls in torch; --help stays cheap

    if args.manifest is not None:
        entries = read_manifest(args.manifest, args.videos, args.allow_outside)
    else:
        entries = discover_folder(args.videos)
    # Class names first: an out-of-vocabulary class fails here, before any expensive work and before writing.
    classes = sorted({e.class_name for e in entries} - {UNLABELED})
    unlabeled = sum(e.class_name == UNLABELED for e in entries)
    _logger.info("%d input videos of %d classes (%d unlabeled)", len(entries), len(classes), unlabeled)
    towers = embed_with_towers(args, args.encoder)
    table = None
    if not towers:
        embedder = ClassNameEmbedder(args.word_vectors, oov=args.oov)
        if classes:
            embedded = embedder.embed(classes, read_phrases(args.class_phrases))
        else:  # unlabeled videos only: features for avzsl-predict or export, no class to embed
            table = ClassTable([], [], np.zeros((0, embedder.dim), np.float32), {**embedder.provenance(), "classes": 0})
        # The class table is all extraction needs from the word vectors: free them before the encoders load and
        # the decode workers fork (docs/memory.md), rather than hold them for the whole run.
        del embedder
        release_cached_vectors()
        gc.collect()
    # Before the encoders are built: a live extraction of any world size that owns one of these shards refuses us.
    check_shard_ownership(args.out, world.rank, world.world_size, -(-len(entries) // max(args.shard_size, 1)))
    if args.device == "auto":
        device = f"cuda:{world.local_rank}" if torch.cuda.is_available() else "cpu"
    else:
        device = args.device
    encoders = build_encoder(
        args.encoder, weight_files(args), args.random_weights, device=device, seed=args.seed, precision=args.precision
    )
    if towers:  # the text towers come with the encoders, so class names are embedded after loading them
        embedded = tower_embedder(args, encoders).embed(classes, read_phrases(args.class_phrases))
    if table is None:
        table = ClassTable(embedded.names, embedded.phrases, embedded.embeddings, embedded.provenance)
    if encoders.random_weights:
        _logger.warning("RANDOM encoder weights: the features test the pipeline only; the cache records this")
    cfg = ExtractConfig(
        encoder=args.encoder,
        decoder=args.decoder,
        windows=args.windows,
        shard_size=args.shard_size,
        sequences=not args.no_sequences,
        seed=args.seed,
        precision=args.precision,
    )
    options = RunOptions(
        batch_size=args.batch_size or default_batch_size(device),
        workers=args.workers,
        probe_jobs=args.probe_jobs,
        device=device,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    summary = run_extraction(entries, args.out, cfg, options, encoders, table, world)
    sys.stdout.write(summary_text(summary, args.out, world))
    return 0


if __name__ == "__main__":
    sys.exit(main())
