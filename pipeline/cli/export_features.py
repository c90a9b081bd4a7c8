"""``avzsl-export``: write an avzsl feature cache in another project's layout."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avzsl.data_manifests import BENCHMARKS
from avzsl.pipeline.cli.errors import report_user_error, user_errors
from avzsl.pipeline.cli.helptext import HelpFormatter, layout_subcommands
from avzsl.pipeline.cli.logs import setup_logging


@dataclass(frozen=True)
class _Layout:
    """What one layout's subcommand says (its options are the same for every layout, built by :func:`_add_layout`).

    Attributes:
        help, description: the subcommand's.
        out, splits, features_help, dataset, split_name, text_order, overwrite: the help of those options.
        features: ``--features`` default; ``split_default``: ``--split-name`` default.
        zero_rows: the summary line for classes given zero vectors (``{filled}`` and ``{used}`` filled in).
    """

    help: str
    description: str
    out: str
    splits: str
    features: str
    features_help: str
    dataset: str
    split_default: str
    split_name: str
    text_order: str
    overwrite: str
    zero_rows: str


_LAYOUTS = {
    "avca": _Layout(
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
        out="AVCA dataset folder to create (must be empty or absent)",
        splits="reference-format split folder (stage_*.txt + stage_*.csv); default CACHE/splits/avca, written by "
               "avzsl-import",
        features="main_features",
        features_help="feature method folder name under OUT/features",
        dataset="name the embedding file as the AVCA loader expects for this benchmark "
                "(word_embeddings_<ds>_normed.npy); default: the imported file's name, else "
                "word_embeddings_normed.npy",
        split_default="main_split",
        split_name="folder under OUT/class-split for the split files (the reference's --zero_shot_split)",
        text_order="by_phrase: each phrase keeps its own embedding (as released; the reference then applies its "
                   "positional class-id lookup and mix-up). by_class_id: vectors permuted so the reference's lookup "
                   "gives every class its own embedding (docs/avca_interop.md)",
        overwrite="write into a non-empty --out, replacing OUT/features/<method>, OUT/class-split and "
                  "OUT/avzsl_export.json",
        zero_rows="{filled} classes without a known embedding got a zero vector ({used} classes of the split read a "
                  "zero row in the reference loader)\n",
    ),
    "clipclap": _Layout(
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
        out="ClipClap dataset folder to create (must be empty or absent)",
        splits="reference-format split folder (stage_*.txt + stage_*.csv); default CACHE/splits/clipclap, written "
               "by avzsl-import clipclap",
        features="cls_features_non_averaged",
        features_help="feature method folder name under OUT/features (ClipClap's feature_extraction_method)",
        dataset="benchmark: the file names its loader class opens (word_embeddings_<ds>_normed.npy, the name map), "
                "its all_class.txt, and text dicts over all its classes (absent ones get zero vectors, reported); "
                "default: 'custom' names and the cache's classes",
        split_default="cls_split",
        split_name="folder under OUT/class-split for the split files (ClipClap's zero_shot_split)",
        text_order="by_phrase: each key keeps its own class's vectors (as ClipClap writes them; its loader then "
                   "applies the positional class-id lookup). by_class_id: vectors permuted so that lookup gives "
                   "every class its own (docs/clipclap_interop.md)",
        overwrite="write into a non-empty --out, replacing OUT/features/<method>, OUT/class-split, "
                  "OUT/_features_processed/<method> (the loader's stale parse) and OUT/avzsl_export.json",
        zero_rows="{filled} classes absent from the cache got zero vectors ({used} classes of the split read a zero "
                  "row in ClipClap's loader)\n",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    return layout_subcommands(
        "avzsl-export",
        "Export an avzsl feature cache to another layout (see docs/avca_interop.md and "
        "docs/clipclap_interop.md).",
        _LAYOUTS,
        _add_layout,
    )


def _add_layout(sub: argparse._SubParsersAction, name: str, layout: _Layout) -> None:
    """The ``name`` subcommand: the same options for every layout, with the layout's texts and defaults."""
    parser = sub.add_parser(name, formatter_class=HelpFormatter, help=layout.help, description=layout.description)
    parser.add_argument("--cache", required=True, type=Path, help="avzsl feature cache")
    parser.add_argument("--out", required=True, type=Path, help=layout.out)
    parser.add_argument("--splits", type=Path, default=None, help=layout.splits)
    parser.add_argument("--features", default=layout.features, help=layout.features_help)
    parser.add_argument("--dataset", choices=BENCHMARKS, type=str.lower, help=layout.dataset)
    parser.add_argument("--split-name", default=layout.split_default, help=layout.split_name)
    parser.add_argument("--text-order", choices=("by_phrase", "by_class_id"), default="by_phrase",
                        help=layout.text_order)
    parser.add_argument("--overwrite", action="store_true", help=layout.overwrite)
    parser.add_argument("--verbose", action="store_true", help="debug logging")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 2 user error)."""
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    # The exporters load numpy, h5py and torch: imported only now, so that --help stays cheap.
    from avzsl.pipeline.interop.avca import export_avca
    from avzsl.pipeline.interop.clipclap.exporter import export_clipclap  # lazy: pulls in torch; --help stays cheap

    export = export_clipclap if args.format == "clipclap" else export_avca
    options: dict[str, Any] = {
        "splits_dir": args.splits, "features": args.features, "dataset": args.dataset, "split_name": args.split_name,
        "text_order": args.text_order, "overwrite": args.overwrite,
    }
    try:
        report = export(args.cache, args.out, **options)
    except user_errors() as exc:
        return report_user_error(exc)
    stages = ", ".join(f"{k} {v}" for k, v in report.stage_videos.items())
    missing = sum(len(v) for v in report.missing.values())
    texts = (", ".join(str(p) for p in report.text_files.values()) if args.format == "clipclap"
             else str(report.text_file))
    sys.stdout.write(f"exported to {report.out_dir}: {stages}\ntext: {texts} ({report.text_classes} classes, "
                     f"{report.text_order})\nclass-split: {report.class_split}\n")
    if report.filled_zero:
        sys.stdout.write(_LAYOUTS[args.format].zero_rows.format(filled=len(report.filled_zero),
                                                                used=len(report.zero_used)))
    if missing:
        sys.stdout.write(f"{missing} split rows had no cached video and were skipped\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
