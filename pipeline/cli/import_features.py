"""``avzsl-import``: bring features released in another project's layout into an avzsl cache."""

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
        root: ``--root`` help.
        features: ``--features`` default; ``features_help``: its help.
        dataset: ``--dataset`` help.
        order: ``--embedding-order`` help.
        split_name: ``--split-name`` default and help, for a layout whose class files are checked against a split
            folder of ``ROOT/class-split`` (``None``: no such option).
    """

    help: str
    description: str
    root: str
    features: str
    features_help: str
    dataset: str
    order: str
    split_name: tuple[str, str] | None = None


_LAYOUTS = {
    "avca": _Layout(
        help="the AVCA / TCAF release layout (features/<method>/{audio,video}/<stage_split>/<Class>.h5)",
        description=(
            "Import an AVCA feature folder: ROOT/features/<method>/{audio,video}/<stage_split>/<ClassName>.h5 "
            "(datasets 'data' (n, D) float32 and 'video_urls') and the class-name embedding dict "
            "ROOT/features/<method>/text/*.npy. Audio and video files are checked to be row-aligned; a video "
            "listed in several stage splits is stored once after checking its features agree. Writes shards, the "
            "class table, cache.json and the implied split folder CACHE/splits/avca (usable as "
            "avzsl-train --splits CACHE/splits/avca). SECURITY: the released embedding .npy is a Python pickle; it "
            "is read with a restricted unpickler (avzsl.pipeline.core.safe_pickle) that admits only a dict of "
            "phrases to numpy vectors and refuses anything else, naming the file, so nothing in it is executed."
        ),
        root="AVCA dataset folder (the one holding features/ and usually class-split/)",
        features="main_features",
        features_help="feature method folder under ROOT/features (main_features = SeLaVi)",
        dataset="benchmark, to map class names to embedded phrases with its shipped class-name map "
                "(default: ROOT/class-split/*_w2v_class_names.csv if present, else normalised names)",
        order="by_name: each class gets its own phrase's embedding (correct). reference: reproduce the AVCA loader's "
              "positional mix-up (table sorted by phrase, indexed by class id) so results compare with published "
              "numbers; the number of classes with another class's embedding is logged",
    ),
    "clipclap": _Layout(
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
        root="ClipClap dataset folder (the one holding features/ and usually class-split/)",
        features="cls_features_non_averaged",
        features_help="feature method folder under ROOT/features (ClipClap's feature_extraction_method)",
        dataset="benchmark: picks the text file names ClipClap's loader opens and its class-name map "
                "(UCF: ucf_clip_class_names.csv, clip_class_name column; others: <ds>_w2v_class_names.csv, "
                "manual); default: the one *_normed.npy of each kind and ROOT/class-split's map",
        order="by_name: each class gets its own key's vectors (correct). reference: reproduce the loader's "
              "positional lookup (key-sorted table indexed by class id); the number of classes with another "
              "class's vectors is logged",
        split_name=("cls_split", "folder under ROOT/class-split whose stage_*.txt the class files are checked "
                                 "against (ClipClap's zero_shot_split)"),
    ),
}


def build_parser() -> argparse.ArgumentParser:
    return layout_subcommands(
        "avzsl-import",
        "Import released features into an avzsl feature cache (see docs/avca_interop.md and "
        "docs/clipclap_interop.md).",
        _LAYOUTS,
        _add_layout,
    )


def _add_layout(sub: argparse._SubParsersAction, name: str, layout: _Layout) -> None:
    """The ``name`` subcommand: the same options for every layout, with the layout's texts and defaults."""
    parser = sub.add_parser(name, formatter_class=HelpFormatter, help=layout.help, description=layout.description)
    parser.add_argument("--root", required=True, type=Path, help=layout.root)
    parser.add_argument("--out", required=True, type=Path, help="cache directory to create (must be empty or absent)")
    parser.add_argument("--features", default=layout.features, help=layout.features_help)
    parser.add_argument("--dataset", choices=BENCHMARKS, type=str.lower, help=layout.dataset)
    if layout.split_name is not None:
        parser.add_argument("--split-name", default=layout.split_name[0], help=layout.split_name[1])
    parser.add_argument("--embedding-order", choices=("by_name", "reference"), default="by_name", help=layout.order)
    parser.add_argument("--shard-size", type=int, default=2000, help="videos per cache shard")
    parser.add_argument("--allow-outside", action="store_true",
                        help="accept files that resolve (through symlinks) outside ROOT")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty --out, replacing its shards, class table, index, cache.json "
                             f"and splits/{name}")
    parser.add_argument("--verbose", action="store_true", help="debug logging")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 2 user error)."""
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    # The importers load numpy, h5py and torch: imported only now, so that --help stays cheap.
    from avzsl.pipeline.interop.avca import import_avca
    from avzsl.pipeline.interop.clipclap.importer import import_clipclap  # lazy: pulls in torch; --help stays cheap

    options: dict[str, Any] = {
        "features": args.features, "dataset": args.dataset, "embedding_order": args.embedding_order,
        "shard_size": args.shard_size, "allow_outside": args.allow_outside, "overwrite": args.overwrite,
    }
    try:
        if args.format == "clipclap":
            report = import_clipclap(args.root, args.out, split_name=args.split_name, **options)
        else:
            report = import_avca(args.root, args.out, **options)
    except user_errors() as exc:
        return report_user_error(exc)
    stages = ", ".join(f"{k} {v}" for k, v in report.stage_videos.items())
    dims = ", ".join(f"{k} {v}" for k, v in report.feature_dims.items())
    sys.stdout.write(f"imported {report.num_videos} videos, {len(report.classes)} classes into {report.cache}\n"
                     + (f"dimensions: {dims}\n" if args.format == "clipclap" else "")
                     + f"stage splits: {stages}\nsplits: {report.splits_dir}\n")
    if report.embedding_order == "reference":
        sys.stdout.write(f"reference embedding order: {len(report.reassigned_classes)} of {len(report.classes)} "
                         "classes carry another class's embedding\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
