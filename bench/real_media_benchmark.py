"""The real-media benchmark (issue 18): 81 classes of clips from real packaged pictures and recordings, split by name.

Usage:
    python bench/real_media_benchmark.py build --out DIR [--tuxpaint-deb DEB] [--pysiogame-deb DEB]
        [--0ad-deb DEB | --0ad-root FOLDER] [--clips 4] [--seed 0]
    avzsl-extract --videos DIR/videos --out DIR/cache --encoder effnet_lite0_aisfx
    python bench/real_media_benchmark.py measure --world DIR [--epochs 30] [--entries default,ridge,...]

``build`` stages the catalogue's files (``pipeline/synth/real_benchmark_catalogue.py``) from the Debian packages
(``apt-get download`` of the pinned versions when no ``.deb`` is given; ``--0ad-root`` takes a folder of files
unpacked from 0 A.D.'s ``public.zip`` instead of the 1.4 GB package) into ``DIR/media`` with ``DIR/attributions.csv``,
checks that every class name is a word of the bundled GloVe vectors, and writes the clips (``DIR/videos``), the
split folder (``DIR/splits``: 15 test-unseen, 15 validation-unseen, the rest seen, by a seeded shuffle of the names)
and ``DIR/benchmark.json``. A rerun re-uses ``DIR``: staged files and written clips are kept, and no package is
needed once ``DIR/media`` is complete.

``measure`` runs ``avzsl-train`` (``--seed``, default 0; CPU) for each entry on ``DIR/cache`` (runs in
``DIR/runs/s<seed>/<entry>``; a finished one is read back) and prints test S/U/H/ZSL (x100),
S over the trained classes whose test clips are held-out media ("new media") and over the others (their training
media in new framings: "same media"), stage-1 validation H, e*, gamma and whether it was at an edge of its search
range, seconds, and the chance levels.

This is a bench script, not a console tool: it needs Debian packages (or a staged ``DIR/media``) and exists to
choose and check methods on real features; the library code is ``pipeline/synth/real_benchmark*.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENTRIES: dict[str, list[str]] = {
    "default": [],
    "ridge": ["--method", "ridge"],
    "eszsl": ["--method", "eszsl"],
    "ce_probe": ["--method", "ce_probe"],
    "conse": ["--method", "conse"],
    "default cls": ["--loss", "cls"],
    "default cls+kd": ["--loss", "cls+kd"],
}


def build(args: argparse.Namespace) -> int:
    from avzsl.extractors.text.class_names import ClassNameEmbedder
    from avzsl.pipeline.synth.real_benchmark import build_world
    from avzsl.pipeline.synth.real_benchmark_catalogue import CATALOGUE
    from avzsl.pipeline.synth.real_benchmark_media import stage_media, staged_name, unpack_deb

    # Every class name must be a word the bundled GloVe vectors know (OOVError otherwise).
    ClassNameEmbedder(None).embed(sorted(CATALOGUE))
    out: Path = args.out
    missing = {s.package for name, c in CATALOGUE.items() for s in c.pictures + c.recordings
               if not (out / "media" / name / staged_name(s)).is_file()}
    with tempfile.TemporaryDirectory() as tmp:
        roots: dict[str, Path] = {}
        for key, deb in (("tux", args.tuxpaint_deb), ("art", args.pysiogame_deb), ("0ad", args.oad_deb)):
            if key in missing:
                roots[key] = args.oad_root if key == "0ad" and args.oad_root else unpack_deb(key, deb, Path(tmp))
        classes, attributions = stage_media(out, roots)
    summary = build_world(out, classes, attributions, clips=args.clips, seed=args.seed,
                          test_unseen=args.test_unseen, val_unseen=args.val_unseen)
    sys.stdout.write(f"{out}: {summary['classes']} classes ({len(summary['seen'])} seen, "
                     f"{len(summary['val_unseen'])} validation-unseen, {len(summary['test_unseen'])} test-unseen), "
                     f"{summary['videos']} clips\n")
    return 0


def run_entry(world: Path, label: str, epochs: int, seed: int) -> dict:
    """One ``avzsl-train`` run (a finished one is read back with its recorded time)."""
    run_dir = world / "runs" / f"s{seed}" / label.replace(" ", "_")
    cmd = [sys.executable, "-m", "avzsl.pipeline.cli.train", "--splits", str(world / "splits"), "--cache",
           str(world / "cache"), "--out", str(run_dir), "--seed", str(seed), "--epochs", str(epochs),
           "--device", "cpu", *ENTRIES[label]]
    timing = run_dir / "timing.json"
    if not ((run_dir / "metrics.json").is_file() and timing.is_file()):
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="2"))
        if proc.returncode:
            return {"label": label, "error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
        timing.write_text(json.dumps({"seconds": round(time.perf_counter() - started, 1)}))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # S split by what the class's test clips are: held-out media, or its training media in new framings
    held = set(json.loads((world / "benchmark.json").read_text())["held_out"])
    per_class = metrics.get("per_class_seen") or {}
    parts = {key: [v for k, v in per_class.items() if (k in held) == flag] for key, flag in (("S_new", True),
                                                                                             ("S_same", False))}
    calib = metrics.get("calibration") or {}
    stage1 = run_dir / "stage1" / "result.json"
    val_h = json.loads(stage1.read_text()).get("H") if stage1.is_file() else None
    return {"label": label, **{k: metrics.get(k) for k in ("S", "U", "H", "ZSL", "epoch", "gamma")},
            "val_H": None if val_h is None else 100 * val_h,
            **{key: sum(v) / len(v) if v else None for key, v in parts.items()},
            "at_edge": calib.get("at_edge"), "edge_optimal": calib.get("edge_optimal"),
            "seconds": json.loads(timing.read_text())["seconds"]}


def chance(world: Path) -> str:
    summary = json.loads((world / "benchmark.json").read_text())
    trained = len(summary["seen"]) + len(summary["val_unseen"])
    unseen = len(summary["test_unseen"])
    every = trained + unseen
    return (f"chance (x100): S and U {100 / every:.2f} ({every} candidates), H {100 / every:.2f}, "
            f"ZSL {100 / unseen:.2f} ({unseen} candidates)")


def measure(args: argparse.Namespace) -> int:
    labels = [e.strip() for e in args.entries.split(",")]
    rows = []
    for label in labels:
        row = run_entry(args.world, label, args.epochs, args.seed)
        rows.append(row)
        sys.stdout.write(json.dumps(row) + "\n")
        sys.stdout.flush()
    (args.world / "runs" / f"s{args.seed}" / "rows.json").write_text(json.dumps(rows, indent=1))
    lines = ["| entry | S | U | H | ZSL | S new media | S same media | val H | e* | gamma | at edge | s |",
             "|---" * 12 + "|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['label']} | failed: {' '.join(r['error'])} |" + " |" * 10)
            continue
        gamma = "-" if r["gamma"] is None else f"{r['gamma']:.3g}"
        edge = "-" if r["at_edge"] is None else ("yes" if r["at_edge"] else "no")
        val_h = "-" if r["val_H"] is None else f"{r['val_H']:.2f}"
        lines.append(f"| {r['label']} | " + " | ".join(f"{r[k]:.2f}" for k in ("S", "U", "H", "ZSL", "S_new", "S_same"))
                     + f" | {val_h} | {r['epoch']} | {gamma} | {edge} | {r['seconds']:.0f} |")
    sys.stdout.write("\n".join(lines) + "\n" + chance(args.world) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="stage the media, write clips, attributions and splits")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--tuxpaint-deb", type=Path)
    b.add_argument("--pysiogame-deb", type=Path)
    b.add_argument("--0ad-deb", dest="oad_deb", type=Path)
    b.add_argument("--0ad-root", dest="oad_root", type=Path, help="folder of files unpacked from public.zip")
    b.add_argument("--clips", type=int, default=4, help="clips per class from its training pairs")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--test-unseen", type=int, default=15)
    b.add_argument("--val-unseen", type=int, default=15)
    m = sub.add_parser("measure", help="run avzsl-train entries on DIR/cache, print the test table")
    m.add_argument("--world", type=Path, required=True)
    m.add_argument("--epochs", type=int, default=30)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--entries", default=",".join(ENTRIES))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    return build(args) if args.command == "build" else measure(args)


if __name__ == "__main__":
    sys.exit(main())
