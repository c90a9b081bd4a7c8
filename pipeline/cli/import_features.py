"""``avzsl-import``: bring features released in another project's layout into an avzsl cache."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avzsl.pipeline.cli.errors import USER_ERRORS, report_user_error
from avzsl.pipeline.cli.helptext import HelpFormatter, add_version_option
from avzsl.pipeline.cli.logs import setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avzsl-import",
        description="Import released features into an avzsl feature cache (see docs/avca_interop.md and "
                    "docs/clipclap_interop.md).",
    )
    sub = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    avca = sub.add_parser(
        "avca",
        formatter_class=HelpFormatter,
        help="the AVCA / TCAF release layout (features/<method>/{audio,video}/<stage_split>/<Class>.h5)",
        description=(
            "Import an AVCA feature folder: ROOT/features/<method>/{audio,video}/<stage_split>/<ClassName>.h5 "
            "(datasets 'data' (n, D) float32 and 'video_urls') and the class-name embedding dict "
            "ROOT/features/<method>/text/*.npy. Audio and video files are checked to be row-aligned; a video "
            "listed in several stage splits is stored once after checking its features agree. Writes shards, the "
            "class table, cache.json and the implied split folder CACHE/splits/avca (usable as "
            "avzsl-train --splits CACHE/splits/avca). SECURITY: the released embedding .npy is a Python pickle and "
            "is loaded with allow_pickle=True, which can execute code: import only folders you trust."
        ),
    )
    avca.add_argument("--root", required=True, type=Path,
                      help="AVCA dataset folder (the one holding features/ and usually class-split/)")
    avca.add_argument("--out", required=True, type=Path, help="cache directory to create (must be empty or absent)")
    avca.add_argument("--features", default="main_features",
                      help="feature method folder under ROOT/features (main_features = SeLaVi)")
    avca.add_argument("--dataset", choices=("ucf", "activitynet", "vggsound"), type=str.lower,
                      help="benchmark, to map class names to embedded phrases with its shipped class-name map "
                           "(default: ROOT/class-split/*_w2v_class_names.csv if present, else normalised names)")
    avca.add_argument("--embedding-order", choices=("by_name", "reference"), default="by_name",
                      help="by_name: each class gets its own phrase's embedding (correct). reference: reproduce the "
                           "AVCA loader's positional mix-up (table sorted by phrase, indexed by class id) so results "
                           "compare with published numbers; the number of classes with another class's embedding "
                           "is logged")
    avca.add_argument("--shard-size", type=int, default=2000, help="videos per cache shard")
    avca.add_argument("--allow-outside", action="store_true",
                      help="accept files that resolve (through symlinks) outside ROOT")
    avca.add_argument("--overwrite", action="store_true",
                      help="write into a non-empty --out, replacing its shards, class table, index, cache.json and "
                           "splits/avca")
    avca.add_argument("--verbose", action="store_true", help="debug logging")
    _add_clipclap(sub)
    add_version_option(parser)
    return parser


def _add_clipclap(sub: argparse._SubParsersAction) -> None:
    clipclap = sub.add_parser(
        "clipclap",
        formatter_class=HelpFormatter,
        help="the ClipClap-GZSL layout (features/<method>/{audio,video}/<stage_split>/<Class>.pkl, CLIP + WavCaps "
             "text dicts)",
        description=(
            "Import a ClipClap-GZSL feature folder (its --root_dir): ROOT/features/<method>/{audio,video}/"
            "<stage_split>/<ClassName>.pkl (pickled {'features': [(D,) float32], 'video_names': [bytes], 'fps': "
            "[int]}) and the two class-name dicts ROOT/features/<method>/text/word_embeddings_<ds>_normed.npy "
            "(CLIP text) and wavcaps_word_embeddings_<ds>_normed.npy (WavCaps text), concatenated per class "
            "[clip | wavcaps] into the class table. Every pickle is read with a restricted unpickler that admits "
            "only numpy arrays, lists, bytes and numbers (nothing is executed). Checks: audio and video files of a "
            "class hold the same videos in the same order; rows and names agree within a file; a video in several "
            "stage splits has equal features; with ROOT/class-split, every class file is in all_class.txt and "
            "every class of <split-name>/stage_*.txt has a file (files a stage list omits are skipped, as ClipClap's "
            "loader drops them). Writes shards, the class table, cache.json and the "
            "implied split folder CACHE/splits/clipclap (docs/clipclap_interop.md)."
        ),
    )
    clipclap.add_argument("--root", required=True, type=Path,
                          help="ClipClap dataset folder (the one holding features/ and usually class-split/)")
    clipclap.add_argument("--out", required=True, type=Path, help="cache directory to create (must be empty or absent)")
    clipclap.add_argument("--features", default="cls_features_non_averaged",
                          help="feature method folder under ROOT/features (ClipClap's feature_extraction_method)")
    clipclap.add_argument("--dataset", choices=("ucf", "activitynet", "vggsound"), type=str.lower,
                          help="benchmark: picks the text file names ClipClap's loader opens and its class-name map "
                               "(UCF: ucf_clip_class_names.csv, clip_class_name column; others: <ds>_w2v_class_names."
                               "csv, manual); default: the one *_normed.npy of each kind and ROOT/class-split's map")
    clipclap.add_argument("--split-name", default="cls_split",
                          help="folder under ROOT/class-split whose stage_*.txt the class files are checked against "
                               "(ClipClap's zero_shot_split)")
    clipclap.add_argument("--embedding-order", choices=("by_name", "reference"), default="by_name",
                          help="by_name: each class gets its own key's vectors (correct). reference: reproduce the "
                               "loader's positional lookup (key-sorted table indexed by class id); the number of "
                               "classes with another class's vectors is logged")
    clipclap.add_argument("--shard-size", type=int, default=2000, help="videos per cache shard")
    clipclap.add_argument("--allow-outside", action="store_true",
                          help="accept files that resolve (through symlinks) outside ROOT")
    clipclap.add_argument("--overwrite", action="store_true",
                          help="write into a non-empty --out, replacing its shards, class table, index, cache.json "
                               "and splits/clipclap")
    clipclap.add_argument("--verbose", action="store_true", help="debug logging")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 2 user error)."""
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    if args.format == "clipclap":
        return _main_clipclap(args)
    from avzsl.pipeline.interop.avca import import_avca

    try:
        report = import_avca(
            args.root, args.out, features=args.features, dataset=args.dataset,
            embedding_order=args.embedding_order, shard_size=args.shard_size,
            allow_outside=args.allow_outside, overwrite=args.overwrite,
        )
    except USER_ERRORS as exc:
        return report_user_error(exc)
    stages = ", ".join(f"{k} {v}" for k, v in report.stage_videos.items())
    sys.stdout.write(f"imported {report.num_videos} videos, {len(report.classes)} classes into {report.cache}\n"
                     f"stage splits: {stages}\nsplits: {report.splits_dir}\n")
    if report.embedding_order == "reference":
        sys.stdout.write(f"reference embedding order: {len(report.reassigned_classes)} of {len(report.classes)} "
                         "classes carry another class's embedding\n")
    return 0


def _main_clipclap(args: argparse.Namespace) -> int:
    from avzsl.pipeline.interop.clipclap.importer import import_clipclap

    try:
        report = import_clipclap(
            args.root, args.out, features=args.features, dataset=args.dataset, split_name=args.split_name,
            embedding_order=args.embedding_order, shard_size=args.shard_size, allow_outside=args.allow_outside,
            overwrite=args.overwrite,
        )
    except USER_ERRORS as exc:
        return report_user_error(exc)
    stages = ", ".join(f"{k} {v}" for k, v in report.stage_videos.items())
    dims = ", ".join(f"{k} {v}" for k, v in report.feature_dims.items())
    sys.stdout.write(f"imported {report.num_videos} videos, {len(report.classes)} classes into {report.cache}\n"
                     f"dimensions: {dims}\nstage splits: {stages}\nsplits: {report.splits_dir}\n")
    if report.embedding_order == "reference":
        sys.stdout.write(f"reference embedding order: {len(report.reassigned_classes)} of {len(report.classes)} "
                         "classes carry another class's embedding\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
