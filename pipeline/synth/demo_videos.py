"""A procedural audio-visual world for the built-in demo: real H.264 + AAC videos whose classes compose attributes.

Every class is ``<colour>_<sound>``: the picture shows shapes of that colour moving on a dark background, the
soundtrack is that sound source (a bell, a drum, a whistle or a siren). Both modalities carry information, and the
class names are made of words the default word vectors know, so a model trained on some colour/sound pairs can
recognise unseen pairs from their names alone. Unseen classes combine a colour and a sound that each appear in
other (seen) classes, arranged as Latin squares so every attribute is seen equally often.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

_logger = logging.getLogger(__name__)

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (235, 45, 40),
    "green": (40, 190, 60),
    "blue": (45, 70, 240),
    "yellow": (240, 215, 35),
}
SOUNDS = ("bell", "drum", "whistle", "siren")
SAMPLE_RATE = 44100
FPS = 30
SIZE = (160, 120)


def class_name(colour: str, sound: str) -> str:
    return f"{colour}_{sound}"


@dataclass(frozen=True)
class DemoClasses:
    """The three protocol groups of the demo world."""

    seen: list[str]
    val_unseen: list[str]
    test_unseen: list[str]

    @property
    def all(self) -> list[str]:
        return self.seen + self.val_unseen + self.test_unseen


def demo_classes() -> DemoClasses:
    """16 classes: colour i with sound (i + 1) % 4 is test-unseen, (i + 2) % 4 val-unseen, the rest seen."""
    colours = list(COLOURS)
    seen, val, test = [], [], []
    for i, colour in enumerate(colours):
        for j, sound in enumerate(SOUNDS):
            name = class_name(colour, sound)
            offset = (j - i) % len(SOUNDS)
            (test if offset == 1 else val if offset == 2 else seen).append(name)
    return DemoClasses(seen, val, test)


def synth_sound(sound: str, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Mono float waveform in [-1, 1] of a sound source, with per-video variation (pitch, rhythm, noise)."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    jitter = rng.uniform(0.92, 1.08)
    if sound == "bell":
        period = rng.uniform(0.35, 0.5)
        phase = (t % period) / period
        base = 880 * jitter
        wave = sum(np.sin(2 * np.pi * base * k * t) / k for k in (1, 2.76, 5.4)) * np.exp(-6 * phase)
    elif sound == "drum":
        period = rng.uniform(0.22, 0.3)
        phase = t % period
        wave = np.sin(2 * np.pi * 70 * jitter * phase) * np.exp(-25 * phase) + 0.3 * rng.standard_normal(
            t.size
        ) * np.exp(-60 * phase)
    elif sound == "whistle":
        wave = np.sin(2 * np.pi * (2600 * jitter * t + 12 * np.sin(2 * np.pi * 6 * t)))
    elif sound == "siren":
        sweep = 1.0 / rng.uniform(0.8, 1.2)
        freq = 600 * jitter * (1.5 + 0.5 * np.sin(2 * np.pi * sweep * t))
        wave = np.sin(2 * np.pi * np.cumsum(freq) / SAMPLE_RATE)
    else:
        raise ValueError(f"unknown sound {sound!r}")
    wave = wave + 0.02 * rng.standard_normal(t.size)
    return (wave / max(1e-6, np.abs(wave).max())).astype(np.float32) * 0.8


def render_frames(colour: tuple[int, int, int], n_frames: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_frames, H, W, 3)`` uint8: 2-3 discs of ``colour`` drifting over a dimmed, noisy field of the same colour
    (the colour dominates the frame, so even randomly initialised encoders see it)."""
    width, height = SIZE
    yy, xx = np.mgrid[0:height, 0:width]
    n = int(rng.integers(2, 4))
    pos = rng.uniform([10, 10], [width - 10, height - 10], size=(n, 2))
    vel = rng.uniform(-2.5, 2.5, size=(n, 2))
    radius = rng.uniform(12, 24, size=n)
    shade = np.clip(np.array(colour) * rng.uniform(0.85, 1.1), 0, 255)
    background = np.array(colour) * rng.uniform(0.3, 0.45) + rng.uniform(0, 20, size=3)
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    for f in range(n_frames):
        image = np.broadcast_to(background, (height, width, 3)).copy()
        for k in range(n):
            cx, cy = pos[k] + vel[k] * f
            inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= radius[k] ** 2
            image[inside] = shade
        frames[f] = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
    return frames


def write_video(path: Path, frames: np.ndarray, audio: np.ndarray) -> None:
    """Encode ``frames`` (T, H, W, 3) uint8 (W, H even) and mono ``audio`` float in [-1, 1] at 44.1 kHz as H.264 +
    AAC in mp4, written to a temporary name and renamed (an interrupted run leaves no half file under ``path``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part.mp4")
    with av.open(str(tmp), mode="w") as container:
        vstream = container.add_stream("libx264", rate=Fraction(FPS))
        vstream.width, vstream.height = frames.shape[2], frames.shape[1]
        vstream.pix_fmt = "yuv420p"
        # Lossless (crf 0): libx264 here gives slightly different bitstreams for the same frames from run to run
        # (seen with one thread and explicit timestamps too); lossless coding makes the decoded frames, and so the
        # demo's numbers, reproducible whatever bitstream the encoder picks.
        vstream.options = {"crf": "0", "preset": "veryfast"}
        astream = container.add_stream("aac", rate=SAMPLE_RATE)
        astream.layout = "mono"
        for index, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            frame.time_base = Fraction(1, FPS)
            for packet in vstream.encode(frame):
                container.mux(packet)
        for packet in vstream.encode():
            container.mux(packet)
        samples = (audio * 32767).astype(np.int16)
        for start in range(0, samples.size, 1024):
            chunk = samples[start : start + 1024][None, :]
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            for packet in astream.encode(frame):
                container.mux(packet)
        for packet in astream.encode():
            container.mux(packet)
    tmp.replace(path)


def write_class_videos(
    out_dir: Path,
    classes: Sequence[str],
    world: Sequence[str],
    videos_per_class: int,
    seed: int,
    render: Callable[[str, np.random.Generator], tuple[np.ndarray, np.ndarray]],
) -> dict[str, list[str]]:
    """Write ``out_dir/<class>/<k>.mp4`` for ``classes``, keeping existing files (the step is resumable).

    Video ``k`` of class ``name`` is ``render(name, rng)`` -> ``(frames (T, H, W, 3) uint8, audio (L,) float)`` with
    ``rng = default_rng([seed, world.index(name), k])``, so a video does not depend on which other classes or videos
    are written with it.

    Returns:
        ``{class_name: [video ids]}`` with ids relative to ``out_dir``.
    """
    out_dir = Path(out_dir)
    videos: dict[str, list[str]] = {}
    for name in classes:
        c = list(world).index(name)
        for k in range(videos_per_class):
            rel = f"{name}/{k:02d}.mp4"
            videos.setdefault(name, []).append(rel)
            path = out_dir / rel
            if not path.is_file():
                write_video(path, *render(name, np.random.default_rng([seed, c, k])))
    return videos


def generate_demo_videos(out_dir: Path, videos_per_class: int = 6, seconds: float = 1.3, seed: int = 0) -> dict:
    """Write ``out_dir/<class>/<k>.mp4`` for every demo class (existing files are kept: the step is resumable).

    Returns:
        ``{class_name: [video ids]}`` with ids relative to ``out_dir``.
    """
    classes = demo_classes().all

    def render(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        colour, sound = name.split("_")
        frames = render_frames(COLOURS[colour], round(seconds * FPS), rng)
        return frames, synth_sound(sound, seconds, rng)

    videos = write_class_videos(out_dir, classes, classes, videos_per_class, seed, render)
    _logger.info("demo videos: %d classes x %d in %s", len(classes), videos_per_class, out_dir)
    return videos
