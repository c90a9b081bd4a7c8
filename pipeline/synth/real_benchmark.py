"""The real-media benchmark world: clips of many classes from real pictures and recordings, a split by name.

A benchmark for choosing and checking methods on real features (``bench/real_media_benchmark.py build``), not the
demo: the clips are made as the real-media demo's (:func:`avzsl.pipeline.synth.real_media.render_frames` and
``render_audio``: a picture panned and zoomed on a tinted background, a recording looped from a random offset at a
random gain), each clip with its own framing, offset and gain. The media of a class are any files given as
:class:`ClassFiles`; the packaged ones are :mod:`avzsl.pipeline.synth.real_benchmark_media`.

Layout of a world folder ``DIR``::

    DIR/media/<class>/<file>          the pictures and recordings used (copied; never changed once there)
    DIR/attributions.csv              one row per file under DIR/media: class, file, source, sha256, licence, copyright
    DIR/videos/<class>/<k>.mp4        clips from the class's training pairs
    DIR/videos/<class>/heldout-<k>.mp4  clips from its held-out pair (the test clips of a trained class)
    DIR/splits/                       the split folder (``avzsl-train --splits``)
    DIR/benchmark.json                classes per group, clips, seed

Where a class has two or more pictures (recordings), the last is held out: its held-out pair is the last picture and
the last recording, and its training pairs cycle through the others, so a trained class is tested on media it never
trained on in every modality that has a spare. The split is by name (seeded shuffle of the sorted names), never by
results. A rerun re-uses what ``DIR`` holds: files and clips already written are kept.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import random
import shutil
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avzsl.hashing import file_sha256
from avzsl.pipeline.core.atomic import atomic_write_csv, atomic_write_text
from avzsl.pipeline.data.splits import write_protocol_splits
from avzsl.pipeline.synth.demo_videos import write_video
from avzsl.pipeline.synth.real_media import (
    CLIP_SECONDS,
    FPS,
    SIZE,
    read_picture,
    read_recording,
    render_audio,
    render_frames,
)

_logger = logging.getLogger(__name__)

HELD_OUT_PREFIX = "heldout-"
ATTRIBUTION_FIELDS = ("class", "file", "source", "sha256", "licence", "copyright")


@dataclass(frozen=True)
class ClassFiles:
    """A class's pictures (any format PIL reads) and recordings (any FFmpeg reads); the last of each is held out
    where there are two or more."""

    pictures: tuple[Path, ...]
    recordings: tuple[Path, ...]

    def pairs(self) -> tuple[list[tuple[Path, Path]], tuple[Path, Path] | None]:
        """``(training pairs, held-out pair or None)``: the held-out pair uses the last picture and recording; a
        modality with one file shares it; without a spare in either modality there is no held-out pair."""
        if not self.pictures or not self.recordings:
            raise ValueError("a class needs at least one picture and one recording")
        pics = list(self.pictures[:-1] if len(self.pictures) > 1 else self.pictures)
        recs = list(self.recordings[:-1] if len(self.recordings) > 1 else self.recordings)
        n = max(len(pics), len(recs))
        train = [(pics[k % len(pics)], recs[k % len(recs)]) for k in range(n)]
        if len(self.pictures) == 1 and len(self.recordings) == 1:
            return train, None
        return train, (self.pictures[-1], self.recordings[-1])

    def held_out_files(self) -> set[Path]:
        """The files only the held-out pair uses."""
        return ({self.pictures[-1]} if len(self.pictures) > 1 else set()) | (
            {self.recordings[-1]} if len(self.recordings) > 1 else set())


def read_shrunk_picture(path: Path) -> np.ndarray:
    """``(H, W, 4)`` uint8 RGBA picture, shrunk to at most twice the clip's longer side (clips are 256x192; a large
    stamp would only slow every frame's resize)."""
    return read_picture(path, max_side=2 * max(SIZE))


_picture = functools.lru_cache(maxsize=8)(read_shrunk_picture)
_recording = functools.lru_cache(maxsize=8)(read_recording)


def split_by_name(names: Sequence[str], seed: int = 0, test_unseen: int = 15,
                  val_unseen: int = 15) -> tuple[list[str], list[str], list[str]]:
    """``(seen, val_unseen, test_unseen)``: a ``seed``-ed shuffle of the sorted names, the first ``test_unseen`` to
    test, the next ``val_unseen`` to validation, the rest seen (each list sorted). Names only, never results."""
    if len(names) < test_unseen + val_unseen + 2:
        raise ValueError(f"{len(names)} classes cannot give {test_unseen} test-unseen, {val_unseen} "
                         "validation-unseen and at least 2 seen classes")
    order = sorted(names)
    random.Random(seed).shuffle(order)
    cut = test_unseen + val_unseen
    return sorted(order[cut:]), sorted(order[test_unseen:cut]), sorted(order[:test_unseen])


def _clip_rng(seed: int, name: str, stream: int, k: int) -> np.random.Generator:
    # A clip's rng depends on its class name, not on the class's place, so adding a class changes no other clip.
    return np.random.default_rng([seed, zlib.crc32(name.encode()), stream, k])


def write_clips(videos_dir: Path, classes: Mapping[str, ClassFiles], clips: int = 4, seed: int = 0,
                held_out_clips: int | None = None) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Write ``clips`` clips per class from its training pairs and ``held_out_clips`` (default ``clips // 2``, at
    least 1) from its held-out pair; clips already there are kept.

    Returns:
        ``({class: video ids}, {class: held-out video ids})``, ids relative to ``videos_dir``.
    """
    extra = held_out_clips if held_out_clips is not None else max(1, clips // 2)
    videos: dict[str, list[str]] = {}
    held: dict[str, list[str]] = {}
    written = 0
    for name, files in classes.items():
        train, held_pair = files.pairs()
        jobs = [(f"{name}/{k:02d}.mp4", train[k % len(train)], 0, k) for k in range(clips)]
        if held_pair is not None:
            jobs += [(f"{name}/{HELD_OUT_PREFIX}{k:02d}.mp4", held_pair, 1, k) for k in range(extra)]
            held[name] = [rel for rel, _, stream, _ in jobs if stream == 1]
        for rel, (picture, recording), stream, k in jobs:
            videos.setdefault(name, []).append(rel)
            path = Path(videos_dir) / rel
            if path.is_file():
                continue
            rng = _clip_rng(seed, name, stream, k)
            frames = render_frames(_picture(picture), round(CLIP_SECONDS * FPS), rng)
            write_video(path, frames, render_audio(_recording(recording), CLIP_SECONDS, rng))
            written += 1
    _logger.info("real-media benchmark: %d clips written, %d kept", written,
                 sum(map(len, videos.values())) - written)
    return videos, held


def place_media(out_dir: Path, classes: Mapping[str, ClassFiles],
                attributions: Mapping[Path, Mapping[str, str]]) -> tuple[dict[str, ClassFiles], list[dict[str, str]]]:
    """Copy every file of ``classes`` to ``out_dir/media/<class>/`` (unless it is there) and return the classes on
    the copies with one attribution row per copy (``attributions``: source, licence, copyright per original path;
    a file without one is an error naming it)."""
    placed: dict[str, ClassFiles] = {}
    rows: list[dict[str, str]] = []
    out_dir = Path(out_dir)
    for name, files in classes.items():
        def place(src: Path, cls: str = name) -> Path:
            if src not in attributions:
                raise ValueError(f"{src}: no attribution (source, licence, copyright) for this file")
            dst = out_dir / "media" / cls / src.name
            if dst.resolve() != Path(src).resolve() and not dst.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, dst)
            info = attributions[src]
            rows.append({"class": cls, "file": dst.relative_to(out_dir).as_posix(), "source": info["source"],
                         "sha256": file_sha256(dst), "licence": info["licence"], "copyright": info["copyright"]})
            return dst

        placed[name] = ClassFiles(tuple(map(place, files.pictures)), tuple(map(place, files.recordings)))
    unique = {row["file"]: row for row in rows}  # a file two lists name is one row
    return placed, [unique[key] for key in sorted(unique)]


def build_world(out_dir: Path, classes: Mapping[str, ClassFiles], attributions: Mapping[Path, Mapping[str, str]],
                clips: int = 4, seed: int = 0, test_unseen: int = 15, val_unseen: int = 15) -> dict:
    """Build (or complete) a benchmark world in ``out_dir``: media, attributions, clips, split folder, summary.

    Returns the summary written to ``out_dir/benchmark.json``.
    """
    out_dir = Path(out_dir)
    placed, rows = place_media(out_dir, classes, attributions)
    atomic_write_csv(out_dir / "attributions.csv", list(ATTRIBUTION_FIELDS),
                     [[row[f] for f in ATTRIBUTION_FIELDS] for row in rows])
    seen, val, test = split_by_name(list(placed), seed, test_unseen, val_unseen)
    videos, held = write_clips(out_dir / "videos", placed, clips, seed)
    trained_held = {name: ids for name, ids in held.items() if name not in set(test)}
    write_protocol_splits(out_dir / "splits", videos, seen, val, test, seed=seed, held_out=trained_held)
    summary = {"classes": len(placed), "seen": seen, "val_unseen": val, "test_unseen": test, "clips": clips,
               "seed": seed, "videos": sum(map(len, videos.values())), "held_out": trained_held}
    atomic_write_text(out_dir / "benchmark.json", json.dumps(summary, indent=1) + "\n")
    _logger.info("real-media benchmark in %s: %d classes (%d seen, %d val-unseen, %d test-unseen), %d clips",
                 out_dir, len(placed), len(seen), len(val), len(test), summary["videos"])
    return summary


def read_attributions(path: Path) -> list[dict[str, str]]:
    """Rows of an ``attributions.csv``."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
