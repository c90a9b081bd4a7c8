"""The real-media demo world: clips made from real pictures and real recordings (``demo_media/``, Tux Paint stamps).

39 classes, each one picture and one recording. A clip shows the picture on a plain, randomly tinted background,
slowly panned and zoomed (the visual stream is a still picture in motion, not filmed video), with the recording
looped from a random offset, at a random gain, with a little noise. Clips of one class therefore differ in framing,
background and timing, not in content: the demo tests recognition of a class's look and sound, and the transfer to
unseen classes through their names.

The classes are split by name into 27 seen, 6 validation-unseen and 6 test-unseen classes. Every unseen class has a
relative among the classes trained before it (violin / cello, goat / sheep, whale / dolphin, chimpanzee / gorilla,
caribou / deer and bison, rabbit / mouse and squirrel; bassoon / cello, orca / dolphin, ...), and the split was
chosen, from the class names and the word vectors only, so that the bundled 50-d GloVe vectors place each unseen
name near such a relative: zero-shot recognition can only work through relations the class-name vectors know. With
these small vectors some names cannot: "hornet" is nearest to "dolphin" and "thunder" (the sports-team sense),
"saw" is the verb, so such classes were left out rather than shown failing for a reason unrelated to the method.
"""

from __future__ import annotations

import csv
import functools
import logging
from importlib import resources
from pathlib import Path

import av
import numpy as np

from avzsl.pipeline.synth.demo_videos import DemoClasses, write_class_videos

_logger = logging.getLogger(__name__)

SEEN = (
    "dog", "lion", "horse", "sheep", "cow", "bee", "cello", "drum", "duck", "crow", "pig", "elephant", "dolphin",
    "frog", "gorilla", "mouse", "owl", "kettle", "camel", "cymbal", "bear", "deer", "squirrel", "zebra", "hen",
    "penguin", "rooster",
)  # fmt: skip
VAL_UNSEEN = ("bassoon", "orca", "bison", "badger", "bull", "donkey")
TEST_UNSEEN = ("violin", "goat", "whale", "chimpanzee", "caribou", "rabbit")
SAMPLE_RATE = 44100
FPS = 30
SIZE = (256, 192)  # width, height
CLIP_SECONDS = 3.0


def real_classes() -> DemoClasses:
    """The 39 classes in their protocol groups."""
    return DemoClasses(list(SEEN), list(VAL_UNSEEN), list(TEST_UNSEEN))


def media_dir() -> Path:
    """The installed ``demo_media`` folder (pictures, recordings, ``attributions.csv``)."""
    return Path(str(resources.files("avzsl.demo_media")))


def attributions() -> list[dict[str, str]]:
    """Rows of ``demo_media/attributions.csv``: class, file, source, sha256, licence, copyright."""
    with (media_dir() / "attributions.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def load_picture(name: str) -> np.ndarray:
    """``(H, W, 4)`` uint8 RGBA picture of class ``name``."""
    from PIL import Image

    path = media_dir() / f"{name}.png"
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))


def load_recording(name: str) -> np.ndarray:
    """Mono float32 samples in [-1, 1] at 44.1 kHz of class ``name``'s recording, peak-normalised."""
    path = media_dir() / f"{name}.ogg"
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    samples = np.concatenate(chunks).astype(np.float32)
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    if peak == 0.0:
        raise ValueError(f"{path}: the recording is silent")
    return samples / peak


# A class's media are decoded once for all its clips (write_class_videos writes the classes one after another).
_picture = functools.lru_cache(maxsize=1)(load_picture)
_recording = functools.lru_cache(maxsize=1)(load_recording)


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


def generate_real_videos(
    out_dir: Path, videos_per_class: int = 6, seconds: float = CLIP_SECONDS, seed: int = 0,
    classes: list[str] | None = None,
) -> dict[str, list[str]]:
    """Write ``out_dir/<class>/<k>.mp4`` (H.264 lossless + AAC) for the classes (existing files are kept).

    Returns:
        ``{class_name: [video ids]}`` with ids relative to ``out_dir``.
    """
    everything = real_classes().all
    names = classes if classes is not None else everything

    def render(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        frames = render_frames(_picture(name), round(seconds * FPS), rng)
        return frames, render_audio(_recording(name), seconds, rng)

    videos = write_class_videos(out_dir, names, everything, videos_per_class, seed, render)
    _logger.info("real-media demo videos: %d classes x %d in %s", len(names), videos_per_class, out_dir)
    return videos
