"""Held-out clips for measuring prediction on media the demo never used (issue 19).

Usage: python bench/heldout_media.py --out DIR [--tuxpaint-deb DEB] [--pysiogame-deb DEB] [--clips 3]

Builds ``DIR/videos/<class>/<source>_<stamp>_<k>.mp4`` in the real-media demo's clip style
(``avzsl.pipeline.synth.real_media``: the picture on a tinted background, slowly panned and zoomed, the recording
looped from a random offset, at a random gain, with a little noise; 3 s, 256x192, 30 fps, 44.1 kHz) from two sources
the demo never used, and ``DIR/attributions.csv`` (class, role, source package and version, path inside the
package, sha256, licence, copyright) for every picture and recording used:

- ``tux``: other stamps of Debian's ``tuxpaint-stamps-default`` 2022.06.04-1 than the 39 copied into ``demo_media/``
  (a white cow, a lamb, a drake, a doe, a dromedary, two golden pigs, a drum kit, a mountain goat, and stamps of
  classes the demo does not have), each with its own picture and its own recording (GPL-2.0-or-later).
- ``art``: the art4apps drawings of Debian's ``pysiogame`` 4.20.01-1 (another artist; the package's copyright file
  declares its images public domain), each with the ``tux`` recording of the same class (the package ships no
  animal sounds); their white card background is made transparent by a flood fill from the border.

No file and no recording may be shared with ``demo_media/``: every file's sha256 is compared with the demo's, and
every recording's waveform with each demo recording (peak normalised cross-correlation over all lags, refused
above 0.9); the check runs before any clip is written. Debian's ``gcompris-qt-data`` is reserved for independent
checks and is not used.

The classes: 7 seen classes of the demo's run (cow, sheep, duck, deer, camel, pig, drum), one of its test-unseen
classes (goat) and 7 classes the demo does not know (goose, tiger, fox, hippopotamus, turkey, koala,
vulture). Tux Paint's giraffe stamp was left out (silent recording), and so was its beaver (its
recording is the demo's badger recording: the waveform check found it). ``bench/predict_heldout.py`` measures a
run and the ConSE zero-shot scorer on them.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

from avzsl.pipeline.synth.demo_videos import write_video
from avzsl.pipeline.synth.real_media import (
    CLIP_SECONDS,
    FPS,
    SAMPLE_RATE,
    attributions,
    media_dir,
    render_audio,
    render_frames,
)

TUX = ("tuxpaint-stamps-default", "2022.06.04-1", "usr/share/tuxpaint/stamps", "GPL-2.0-or-later",
       "2002-2022 by Bill Kendrick (Tux Paint)")
ART = ("pysiogame", "4.20.01-1", "usr/share/games/pysiogame/res/images/art4apps/animals", "public-domain",
       "not copyrighted (debian/copyright: drawn by the author or from openclipart.org, released to the public domain)")

# class -> Tux Paint stamps (path without extension under the stamps folder), each a picture and its recording.
TUX_STAMPS = {
    "cow": ["animals/mammals/bovines/cow_white"],
    "sheep": ["animals/mammals/bovines/sheep_lamb"],
    "duck": ["animals/birds/drake"],
    "deer": ["animals/mammals/deer/doe"],
    "camel": ["animals/mammals/camel/dromedary"],
    "pig": ["animals/mammals/pig_golden", "animals/mammals/pig_golden2"],
    "drum": ["hobbies/music/percussion/drumkit"],
    "goat": ["animals/mammals/bovines/mountaingoat"],
    "goose": ["animals/birds/gander"],
    "tiger": ["animals/mammals/cats/tiger"],
    "fox": ["animals/mammals/dogs/fox"],
    "hippopotamus": ["animals/mammals/hippopotamus"],
    "turkey": ["animals/birds/turkey"],
    "koala": ["animals/marsupials/koala"],
    "vulture": ["animals/birds/vulture"],
}
# class -> pysiogame art4apps drawings (file stem); the recording is the class's first Tux Paint stamp's.
ART_PICTURES = {
    "cow": ["cow"], "sheep": ["sheep"], "duck": ["duck"], "deer": ["deer", "doe"], "camel": ["camel"],
    "pig": ["pig"], "goat": ["goat"], "goose": ["goose"], "tiger": ["tiger"], "fox": ["fox"],
    "hippopotamus": ["hippopotamus"], "turkey": ["turkey"], "koala": ["koala"], "vulture": ["vulture"],
}  # fmt: skip
SEEN_IN_DEMO = ("cow", "sheep", "duck", "deer", "camel", "pig", "drum")
UNSEEN_IN_DEMO = ("goat",)
MAX_CORRELATION = 0.9


@dataclass(frozen=True)
class Pair:
    """One picture and one recording of a class; ``tag`` names the clips made of them."""

    cls: str
    tag: str
    picture: Path
    recording: Path
    picture_source: tuple[str, ...]
    recording_source: tuple[str, ...]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def unpack(package: str, version: str, deb: Path | None, into: Path) -> Path:
    """Unpack the .deb (``apt-get download PACKAGE=VERSION`` when none is given) into ``into``."""
    if deb is None:
        subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=into, check=True)
        deb = next(into.glob(f"{package}_*.deb"))
    target = into / package
    subprocess.run(["dpkg-deb", "-x", str(deb), str(target)], check=True)
    return target


def load_recording_file(path: Path) -> np.ndarray:
    """Mono float32 at 44.1 kHz, peak-normalised (as ``real_media.load_recording`` reads the demo's files)."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(frame)]
        chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    samples = np.concatenate(chunks).astype(np.float32)
    peak = float(np.abs(samples).max())
    if peak == 0.0:
        raise ValueError(f"{path}: the recording is silent")
    return samples / peak


def max_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Peak of the normalised cross-correlation of two recordings over all lags (1.0: one contains the other)."""
    n = a.size + b.size - 1
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    return float(np.abs(corr).max() / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def check_held_out(pairs: list[Pair]) -> None:
    """Refuse any file whose sha256 or recording waveform is one of ``demo_media/``'s."""
    demo = media_dir()
    demo_sha = {row["sha256"] for row in attributions()}
    demo_audio = {p.stem: load_recording_file(p) for p in sorted(demo.glob("*.ogg"))}
    problems = []
    for path in sorted({p.picture for p in pairs} | {p.recording for p in pairs}):
        if sha256(path) in demo_sha:
            problems.append(f"{path}: the same file is in demo_media/")
    for path in sorted({p.recording for p in pairs}):
        samples = load_recording_file(path)
        for stem, other in demo_audio.items():
            corr = max_correlation(samples, other)
            if corr > MAX_CORRELATION:
                problems.append(f"{path}: its waveform matches demo_media/{stem}.ogg (correlation {corr:.2f})")
    if problems:
        raise SystemExit("not held out:\n  " + "\n  ".join(problems))


def art_rgba(path: Path) -> np.ndarray:
    """``(H, W, 4)`` uint8 of an art4apps drawing with its white card background (reached from the border) cleared."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    marker = (1, 2, 3)
    filled = rgb.copy()
    w, h = filled.size
    for xy in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1)):
        if filled.getpixel(xy) != marker:
            ImageDraw.floodfill(filled, xy, marker, thresh=40)
    alpha = np.where(np.all(np.asarray(filled) == marker, axis=-1), 0, 255).astype(np.uint8)
    return np.dstack([np.asarray(rgb), alpha])


def tux_rgba(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGBA"))


def pairs_from(tux_root: Path, art_root: Path | None) -> list[Pair]:
    stamps = tux_root / TUX[2]
    pairs = []
    for cls, items in TUX_STAMPS.items():
        for item in items:
            stem = item.rsplit("/", 1)[1]
            src = ("tux", f"{TUX[2]}/{item}")
            pairs.append(Pair(cls, f"tux_{stem}", stamps / f"{item}.png", stamps / f"{item}.ogg", src, src))
    if art_root is not None:
        art = art_root / ART[2]
        for cls, stems in ART_PICTURES.items():
            sound = TUX_STAMPS[cls][0]
            for stem in stems:
                pairs.append(Pair(cls, f"art_{stem}", art / f"{stem}.jpg", stamps / f"{sound}.ogg",
                                  ("art", f"{ART[2]}/{stem}.jpg"), ("tux", f"{TUX[2]}/{sound}")))
    return pairs


def write_attributions(path: Path, pairs: list[Pair]) -> None:
    meta = {"tux": TUX, "art": ART}
    rows = {}
    for p in pairs:
        for role, file, (src, inner) in (("picture", p.picture, p.picture_source),
                                         ("recording", p.recording, p.recording_source)):
            package, version, _, licence, copyright_ = meta[src]
            inner = inner if inner.endswith((".jpg", ".png", ".ogg")) else inner + file.suffix
            rows[(p.cls, role, inner)] = [p.cls, role, f"{package} {version}: /{inner}", sha256(file), licence,
                                          copyright_]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["class", "role", "source", "sha256", "licence", "copyright"])
        writer.writerows(rows.values())


def class_group(cls: str) -> str:
    """``seen``, ``unseen`` (test-unseen class of the demo) or ``new`` (not a class of the demo)."""
    return "seen" if cls in SEEN_IN_DEMO else "unseen" if cls in UNSEEN_IN_DEMO else "new"


def build(out: Path, tux_deb: Path | None, art_deb: Path | None, clips: int, seed: int, use_art: bool) -> int:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="heldout_media_") as tmp:
        tux_root = unpack(TUX[0], TUX[1], tux_deb, Path(tmp))
        art_root = unpack(ART[0], ART[1], art_deb, Path(tmp)) if use_art else None
        pairs = pairs_from(tux_root, art_root)
        check_held_out(pairs)
        written = 0
        for index, pair in enumerate(pairs):
            picture = art_rgba(pair.picture) if pair.tag.startswith("art_") else tux_rgba(pair.picture)
            recording = load_recording_file(pair.recording)
            for k in range(clips):
                path = out / "videos" / pair.cls / f"{pair.tag}_{k:02d}.mp4"
                if path.is_file():
                    continue
                rng = np.random.default_rng([seed, index, k])
                frames = render_frames(picture, round(CLIP_SECONDS * FPS), rng)
                write_video(path, frames, render_audio(recording, CLIP_SECONDS, rng))
                written += 1
        write_attributions(out / "attributions.csv", pairs)
    print(f"{len(pairs)} picture/recording pairs, {clips} clips each ({written} written now) in {out / 'videos'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tuxpaint-deb", type=Path, help=f"{TUX[0]}_{TUX[1]}_all.deb (default: apt-get download)")
    parser.add_argument("--pysiogame-deb", type=Path, help=f"{ART[0]}_{ART[1]}_all.deb (default: apt-get download)")
    parser.add_argument("--no-art", action="store_true", help="only the Tux Paint pairs")
    parser.add_argument("--clips", type=int, default=3, help="clips per picture/recording pair")
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args(argv)
    return build(args.out, args.tuxpaint_deb, args.pysiogame_deb, args.clips, args.seed, not args.no_art)


if __name__ == "__main__":
    sys.exit(main())
