"""Options and option readers shared by more than one command-line tool (avzsl-extract, avzsl-predict)."""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from avzsl.data_manifests import BENCHMARKS, class_phrases
from avzsl.extractors.encoders.precision import PRECISIONS
from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.data.class_names import normalize_class_name


def add_foundation_arguments(parser: argparse.ArgumentParser) -> None:
    """CLIP/CLAP weights, text-tower templates and precision (shared with avzsl-predict)."""
    parser.add_argument(
        "--clip-checkpoint", type=Path, help="CLIP weights open_clip_pytorch_model.bin (clip_clap; docs/encoders.md)"
    )
    parser.add_argument(
        "--clap-checkpoint", type=Path, help="CLAP folder laion/clap-htsat-unfused (clip_clap; docs/encoders.md)"
    )
    parser.add_argument(
        "--class-embedder",
        default="auto",
        choices=("auto", "word_vectors", "text_towers"),
        help="class-name embeddings: auto = text towers for clip_clap encoders, word vectors otherwise",
    )
    parser.add_argument(
        "--text-templates",
        default="plain",
        help="prompt templates of the text towers: plain, ucf, activitynet or vggsound (ClipClap's sets)",
    )
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=PRECISIONS,
        help="encoder forward precision (fp32 = the official features; recorded in cache.json)",
    )


def read_phrases(value: str | None) -> dict[str, str] | None:
    """The class -> phrase map of ``--class-phrases``."""
    if value is None:
        return None
    if value.lower() in BENCHMARKS:
        return dict(class_phrases(value))
    path = Path(value)
    if not path.is_file():
        raise UserError(f"{path}: class-phrase file not found")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not {"original", "manual"} <= set(reader.fieldnames or []):
            raise UserError(f"{path}: needs columns original,manual")
        # Keys in NFC, the form class names are stored in (docs/class_names.md).
        return {normalize_class_name(row["original"]): row["manual"] for row in reader}
