"""``avzsl-export``: write an avzsl feature cache in another project's layout."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avzsl.pipeline.cli.errors import USER_ERRORS, report_user_error
from avzsl.pipeline.cli.helptext import HelpFormatter, add_version_option
from avzsl.pipeline.cli.logs import setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avzsl-export",
        description="Export an avzsl feature cache to another layout (see docs/avca_interop.md and "
                    "docs/clipclap_interop.md).",
    )
    sub = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    avca = sub.add_parser(
        "avca",
        formatter_class=HelpFormatter,
        help="the AVCA / TCAF release layout",
        description=(
            "Write OUT/features/<method>/{audio,video}/<stage_split>/<ClassName>.h5 ('data' (n, D) float32, "
            "'video_urls' fixed-length S80 bytes as in the AVCA release, variable-length UTF-8 only for longer or "
            "non-ASCII names) for every stage split of the split folder, and the class-table embeddings as "
            "OUT/features/<method>/text/<name>.npy (np.save of a dict, a pickle, as the AVCA loader expects; with "
            "--dataset it covers the benchmark's full class list, which the loader indexes by class id), and "
            "OUT/class-split/ (all_class.txt, the name map, <split-name>/stage_*.txt/csv) so the reference code runs "
            "on OUT unchanged. Split rows are matched to cache video ids; rows with no cached video are skipped and "
            "reported."
        ),
    )
    avca.add_argument("--cache", required=True, type=Path, help="avzsl feature cache")
    avca.add_argument("--out", required=True, type=Path, help="AVCA dataset folder to create (must be empty or absent)")
    avca.add_argument("--splits", type=Path, default=None,
                      help="reference-format split folder (stage_*.txt + stage_*.csv); default CACHE/splits/avca, "
                           "written by avzsl-import")
    avca.add_argument("--features", default="main_features", help="feature method folder name under OUT/features")
    avca.add_argument("--dataset", choices=("ucf", "activitynet", "vggsound"), type=str.lower,
                      help="name the embedding file as the AVCA loader expects for this benchmark "
                           "(word_embeddings_<ds>_normed.npy); default: the imported file's name, else "
                           "word_embeddings_normed.npy")
    avca.add_argument("--split-name", default="main_split",
                      help="folder under OUT/class-split for the split files (the reference's --zero_shot_split)")
    avca.add_argument("--text-order", choices=("by_phrase", "by_class_id"), default="by_phrase",
                      help="by_phrase: each phrase keeps its own embedding (as released; the reference then applies "
                           "its positional class-id lookup and mix-up). by_class_id: vectors permuted so the "
                           "reference's lookup gives every class its own embedding (docs/avca_interop.md)")
    avca.add_argument("--overwrite", action="store_true",
                      help="write into a non-empty --out, replacing OUT/features/<method>, OUT/class-split and "
                           "OUT/avzsl_export.json")
    avca.add_argument("--verbose", action="store_true", help="debug logging")
    _add_clipclap(sub)
    add_version_option(parser)
    return parser


def _add_clipclap(sub: argparse._SubParsersAction) -> None:
    clipclap = sub.add_parser(
        "clipclap",
        formatter_class=HelpFormatter,
        help="the ClipClap-GZSL layout (per-class pickles, CLIP + WavCaps text dicts)",
        description=(
            "Write OUT/features/<method>/{audio,video}/<stage_split>/<ClassName>.pkl (pickle of {'features': "
            "[(D,) float32 per video], 'video_names': [UTF-8 bytes], 'fps': [25]}, as ClipClap's splitting script "
            "writes them) for every stage split of the split folder, the class table's CLIP-text and CLAP-text "
            "columns as OUT/features/<method>/text/word_embeddings_<ds>_normed.npy and "
            "wavcaps_word_embeddings_<ds>_normed.npy (np.save of a dict, as the loader expects; with --dataset "
            "covering the benchmark's full class list, which the loader indexes by class id), and OUT/class-split/ "
            "(all_class.txt, the name map, <split-name>/stage_*.txt/csv), so ClipClap's loader runs on OUT "
            "(--root_dir OUT). The cache's class table must come from the text towers (clip_clap extraction) or "
            "a ClipClap import. Split rows are matched to cache video ids; rows with no cached video are skipped "
            "and reported."
        ),
    )
    clipclap.add_argument("--cache", required=True, type=Path, help="avzsl feature cache")
    clipclap.add_argument("--out", required=True, type=Path,
                          help="ClipClap dataset folder to create (must be empty or absent)")
    clipclap.add_argument("--splits", type=Path, default=None,
                          help="reference-format split folder (stage_*.txt + stage_*.csv); default "
                               "CACHE/splits/clipclap, written by avzsl-import clipclap")
    clipclap.add_argument("--features", default="cls_features_non_averaged",
                          help="feature method folder name under OUT/features (ClipClap's feature_extraction_method)")
    clipclap.add_argument("--dataset", choices=("ucf", "activitynet", "vggsound"), type=str.lower,
                          help="benchmark: the file names its loader class opens (word_embeddings_<ds>_normed.npy, "
                               "the name map), its all_class.txt, and text dicts over all its classes (absent ones "
                               "get zero vectors, reported); default: 'custom' names and the cache's classes")
    clipclap.add_argument("--split-name", default="cls_split",
                          help="folder under OUT/class-split for the split files (ClipClap's zero_shot_split)")
    clipclap.add_argument("--text-order", choices=("by_phrase", "by_class_id"), default="by_phrase",
                          help="by_phrase: each key keeps its own class's vectors (as ClipClap writes them; its "
                               "loader then applies the positional class-id lookup). by_class_id: vectors permuted so "
                               "that lookup gives every class its own (docs/clipclap_interop.md)")
    clipclap.add_argument("--overwrite", action="store_true",
                          help="write into a non-empty --out, replacing OUT/features/<method>, OUT/class-split, "
                               "OUT/_features_processed/<method> (the loader's stale parse) and OUT/avzsl_export.json")
    clipclap.add_argument("--verbose", action="store_true", help="debug logging")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 2 user error)."""
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    if args.format == "clipclap":
        return _main_clipclap(args)
    from avzsl.pipeline.interop.avca import export_avca

    try:
        report = export_avca(args.cache, args.out, splits_dir=args.splits, features=args.features,
                             dataset=args.dataset, split_name=args.split_name, text_order=args.text_order,
                             overwrite=args.overwrite)
    except USER_ERRORS as exc:
        return report_user_error(exc)
    stages = ", ".join(f"{k} {v}" for k, v in report.stage_videos.items())
    missing = sum(len(v) for v in report.missing.values())
    sys.stdout.write(f"exported to {report.out_dir}: {stages}\ntext: {report.text_file} ({report.text_classes} "
                     f"classes, {report.text_order})\nclass-split: {report.class_split}\n")
    if report.filled_zero:
        sys.stdout.write(f"{len(report.filled_zero)} classes without a known embedding got a zero vector "
                         f"({len(report.zero_used)} classes of the split read a zero row in the reference loader)\n")
    if missing:
        sys.stdout.write(f"{missing} split rows had no cached video and were skipped\n")
    return 0


def _main_clipclap(args: argparse.Namespace) -> int:
    from avzsl.pipeline.interop.clipclap.exporter import export_clipclap

    try:
        report = export_clipclap(args.cache, args.out, splits_dir=args.splits, features=args.features,
                                 dataset=args.dataset, split_name=args.split_name, text_order=args.text_order,
                                 overwrite=args.overwrite)
    except USER_ERRORS as exc:
        return report_user_error(exc)
    stages = ", ".join(f"{k} {v}" for k, v in report.stage_videos.items())
    missing = sum(len(v) for v in report.missing.values())
    texts = ", ".join(str(p) for p in report.text_files.values())
    sys.stdout.write(f"exported to {report.out_dir}: {stages}\ntext: {texts} ({report.text_classes} classes, "
                     f"{report.text_order})\nclass-split: {report.class_split}\n")
    if report.filled_zero:
        sys.stdout.write(f"{len(report.filled_zero)} classes absent from the cache got zero vectors "
                         f"({len(report.zero_used)} classes of the split read a zero row in ClipClap's loader)\n")
    if missing:
        sys.stdout.write(f"{missing} split rows had no cached video and were skipped\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
