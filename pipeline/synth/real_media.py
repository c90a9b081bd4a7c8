"""The real-media demo world: clips made from real pictures and real recordings (``demo_media/``).

A clip shows a picture on a plain, randomly tinted background, slowly panned and zoomed (the visual stream is a still
picture in motion, not filmed video), with a recording looped from a random offset, at a random gain, with a little
noise. Which pictures and recordings make the clips of each class, and which of them are held out for its test
clips, is :mod:`avzsl.pipeline.synth.real_catalogue`: every class the protocol trains on is tested on a picture
and a recording it never trained on, so the demo's S, U, H and ZSL measure recognition of new media.
"""

from __future__ import annotations

import csv
import functools
import logging
from importlib import resources
from pathlib import Path

import av
import numpy as np

from avzsl.pipeline.synth.demo_videos import DemoClasses, write_video
from avzsl.pipeline.synth.real_catalogue import CATALOGUE, SEEN, TEST_UNSEEN, VAL_UNSEEN, ClassMedia, MediaPair

_logger = logging.getLogger(__name__)

SAMPLE_RATE = 44100
FPS = 30
SIZE = (256, 192)  # width, height
CLIP_SECONDS = 3.0


def real_classes() -> DemoClasses:
    """The demo world's classes in their protocol groups (9 seen, 3 validation-unseen, 7 test-unseen)."""
    return DemoClasses(list(SEEN), list(VAL_UNSEEN), list(TEST_UNSEEN))


def media_dir() -> Path:
    """The installed ``demo_media`` folder (pictures, recordings, ``attributions.csv``)."""
    return Path(str(resources.files("avzsl.demo_media")))


def attributions() -> list[dict[str, str]]:
    """Rows of ``demo_media/attributions.csv``: class, file, source, sha256, licence, copyright."""
    with (media_dir() / "attributions.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_picture(path: Path, max_side: int | None = None) -> np.ndarray:
    """``(H, W, 4)`` uint8 RGBA picture of an image file, shrunk to at most ``max_side`` pixels when given."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGBA")
        if max_side is not None:
            image.thumbnail((max_side, max_side))
        return np.asarray(image)


def load_picture(name: str) -> np.ndarray:
    """``(H, W, 4)`` uint8 RGBA picture ``demo_media/<name>.png`` (a class name or a file stem such as ``cow-art``)."""
    return read_picture(media_dir() / f"{name}.png")


def read_recording(path: Path) -> np.ndarray:
    """Mono float32 samples in [-1, 1] at 44.1 kHz of a recording file, peak-normalised; a silent (or empty)
    recording is an error naming the file."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
        chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak == 0.0:
        raise ValueError(f"{path}: the recording is silent")
    return samples / peak


def load_recording(name: str) -> np.ndarray:
    """Mono float32 samples in [-1, 1] at 44.1 kHz of ``demo_media/<name>.ogg``, peak-normalised."""
    return read_recording(media_dir() / f"{name}.ogg")


# A class's media are decoded once for all its clips (the classes are written one after another).
_picture = functools.lru_cache(maxsize=4)(load_picture)
_recording = functools.lru_cache(maxsize=4)(load_recording)


def render_frames(picture: np.ndarray, n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_frames, H, W, 3)`` uint8: the picture composited on a tinted background, panned and zoomed slowly."""
    from PIL import Image

    width, height = SIZE
    tint = rng.uniform(150, 250, size=3)
    gradient = np.linspace(0.9, 1.05, height)[:, None, None]
    background = np.clip(tint[None, None, :] * gradient * np.ones((height, width, 1)), 0, 255)
    if rng.random() < 0.5:
        picture = picture[:, ::-1]
    base = Image.fromarray(np.ascontiguousarray(picture), "RGBA")
    scale0 = rng.uniform(0.65, 0.85) * min(width / base.width, height / base.height)
    scale1 = scale0 * rng.uniform(1.0, 1.15)
    start = rng.uniform(-0.12, 0.12, size=2) * (width, height)
    end = rng.uniform(-0.12, 0.12, size=2) * (width, height)
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    for f in range(n_frames):
        a = f / max(n_frames - 1, 1)
        scale = scale0 + (scale1 - scale0) * a
        w, h = max(1, round(base.width * scale)), max(1, round(base.height * scale))
        sprite = base.resize((w, h), Image.BILINEAR)
        cx, cy = np.array((width, height)) / 2 + start + (end - start) * a
        canvas = Image.fromarray(background.astype(np.uint8), "RGB")
        canvas.paste(sprite, (round(cx - w / 2), round(cy - h / 2)), sprite)
        frames[f] = np.asarray(canvas)
    return frames


def render_audio(recording: np.ndarray, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Mono float32 ``(seconds * 44100,)``: the recording looped with short gaps from a random offset, plus noise."""
    n = round(seconds * SAMPLE_RATE)
    gap = np.zeros(round(rng.uniform(0.05, 0.4) * SAMPLE_RATE), np.float32)
    unit = np.concatenate([recording, gap])
    reps = -(-(n + unit.size) // unit.size)
    looped = np.tile(unit, reps)
    offset = int(rng.integers(0, unit.size))
    track = looped[offset : offset + n] * rng.uniform(0.5, 0.9)
    track = track + rng.normal(0, 0.004, n).astype(np.float32)
    return np.clip(track, -1, 1).astype(np.float32)


def class_media(name: str) -> ClassMedia:
    """The catalogue's pairs of class ``name``; a class outside the catalogue with a ``demo_media/<name>.png`` and
    ``.ogg`` (a stamp of the first demo world, used by tests) gets that one pair for training clips."""
    if name in CATALOGUE:
        return CATALOGUE[name]
    if (media_dir() / f"{name}.png").is_file() and (media_dir() / f"{name}.ogg").is_file():
        return ClassMedia((MediaPair(name, name),))
    raise ValueError(f"no demo media for class {name!r} (demo_media/ has no {name}.png and {name}.ogg)")


HELD_OUT_PREFIX = "heldout-"
"""Clips made from a class's held-out pair are ``<class>/heldout-<k>.mp4``."""
VALIDATION_PREFIX = "val-"
"""Clips made from a class's validation pair are ``<class>/val-<k>.mp4``."""


def _with_prefix(videos: dict[str, list[str]], prefix: str) -> dict[str, list[str]]:
    out = {name: [v for v in ids if Path(v).name.startswith(prefix)] for name, ids in videos.items()}
    return {name: ids for name, ids in out.items() if ids}


def held_out_videos(videos: dict[str, list[str]]) -> dict[str, list[str]]:
    """``{class: ids of its held-out clips}`` of a :func:`generate_real_videos` result (classes with any)."""
    return _with_prefix(videos, HELD_OUT_PREFIX)


def validation_videos(videos: dict[str, list[str]]) -> dict[str, list[str]]:
    """``{class: ids of its validation-pair clips}`` of a :func:`generate_real_videos` result (classes with any)."""
    return _with_prefix(videos, VALIDATION_PREFIX)


def generate_real_videos(
    out_dir: Path, videos_per_class: int = 6, seconds: float = CLIP_SECONDS, seed: int = 0,
    classes: list[str] | None = None, held_out_clips: int | None = None,
) -> dict[str, list[str]]:
    """Write ``out_dir/<class>/<k>.mp4`` (H.264 lossless + AAC) for the classes (existing files are kept).

    Clip ``k`` of a class is made from its training pair ``k % len(train)``; ``held_out_clips`` (default
    ``videos_per_class // 2``) more clips per validation pair are ``out_dir/<class>/val-<k>.mp4`` and as many per
    held-out pair ``out_dir/<class>/heldout-<k>.mp4``. Every clip has
    its own rng (``seed``, the class's place in the world, the clip), so a clip does not depend on which other
    classes or clips are written with it.

    Returns:
        ``{class_name: [video ids]}`` with ids relative to ``out_dir`` (:func:`held_out_videos` picks the held-out).
    """
    everything = real_classes().all
    names = classes if classes is not None else everything
    extra = held_out_clips if held_out_clips is not None else videos_per_class // 2
    videos: dict[str, list[str]] = {}
    for name in names:
        media = class_media(name)
        c = everything.index(name) if name in everything else len(everything) + sum(map(ord, name))
        jobs = [(f"{name}/{k:02d}.mp4", media.train[k % len(media.train)], [seed, c, 0, k])
                for k in range(videos_per_class)]
        for stream, (prefix, pairs) in enumerate(((VALIDATION_PREFIX, media.validation),
                                                  (HELD_OUT_PREFIX, media.held_out)), start=1):
            jobs += [(f"{name}/{prefix}{k:02d}.mp4", pairs[k % len(pairs)], [seed, c, stream, k])
                     for k in range(extra * len(pairs))]
        for rel, pair, rng_key in jobs:
            videos.setdefault(name, []).append(rel)
            path = Path(out_dir) / rel
            if not path.is_file():
                rng = np.random.default_rng(rng_key)
                frames = render_frames(_picture(pair.picture), round(seconds * FPS), rng)
                write_video(path, frames, render_audio(_recording(pair.recording), seconds, rng))
    _logger.info("real-media demo videos: %d classes in %s", len(names), out_dir)
    return videos
