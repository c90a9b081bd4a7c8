"""Rebuild ``demo_media/`` (the real-media demo's pictures and recordings) from Debian's tuxpaint-stamps-default.

The media ship in the repository (2.2 MB), so nobody needs this script to run the demo; it documents and repeats
where every file came from. Usage (Debian/Ubuntu with apt sources, or with the .deb given):

    python scripts/build_demo_media.py [--deb tuxpaint-stamps-default_2022.06.04-1_all.deb]

It copies each chosen stamp's picture (PNG with transparency) and sound (Ogg Vorbis) unchanged, renamed to the class
name, and writes ``demo_media/attributions.csv`` (class, file, path in the package, sha256, licence, copyright).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from avzsl.hashing import file_sha256

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "tuxpaint-stamps-default"
VERSION = "2022.06.04-1"
STAMPS = "usr/share/tuxpaint/stamps"
COPYRIGHT = "2002-2022 by Bill Kendrick (Tux Paint)"
LICENCE = "GPL-2.0-or-later"

# class name -> stamp path (without extension) inside the package's stamps folder.
CLASSES = {
    "dog": "animals/mammals/dogs/dog",
    "lion": "animals/mammals/cats/lion",
    "horse": "animals/mammals/equines/horse",
    "sheep": "animals/mammals/bovines/sheep",
    "cow": "animals/mammals/bovines/cow",
    "bee": "animals/insects/bee",
    "cello": "hobbies/music/string/cello",
    "drum": "hobbies/music/percussion/drum_tomtom_floor",
    "duck": "animals/birds/duck",
    "crow": "animals/birds/crow",
    "pig": "animals/mammals/pig",
    "elephant": "animals/mammals/elephant",
    "dolphin": "animals/mammals/aquatic/dolphin",
    "frog": "animals/amphibians/frog",
    "gorilla": "animals/mammals/apes/gorilla",
    "mouse": "animals/mammals/rodents/mouse",
    "owl": "animals/birds/owl",
    "kettle": "household/kettle",
    "camel": "animals/mammals/camel/camel",
    "cymbal": "hobbies/music/percussion/cymbal_crash",
    "bear": "animals/mammals/bears/bear",
    "rooster": "animals/birds/rooster",
    "whale": "animals/mammals/aquatic/whale",
    "rabbit": "animals/mammals/rodents/rabbit",
    "penguin": "animals/birds/penguin",
    "donkey": "animals/mammals/equines/donkey",
    "goat": "animals/mammals/bovines/goat",
    "violin": "hobbies/music/string/violin",
    "deer": "animals/mammals/deer/deer",
    "squirrel": "animals/mammals/rodents/squirrel",
    "zebra": "animals/mammals/equines/zebra",
    "hen": "animals/birds/hen",
    "bassoon": "hobbies/music/wind/bassoon",
    "orca": "animals/mammals/aquatic/orca",
    "bison": "animals/mammals/bovines/bison",
    "badger": "animals/mammals/badger",
    "bull": "animals/mammals/bovines/bull",
    "chimpanzee": "animals/mammals/apes/chimp",
    "caribou": "animals/mammals/deer/caribou",
}




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deb", type=Path, help=f"{PACKAGE} .deb (default: apt-get download {PACKAGE}={VERSION})")
    parser.add_argument("--out", type=Path, default=REPO / "demo_media")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        deb = args.deb
        if deb is None:
            subprocess.run(["apt-get", "download", f"{PACKAGE}={VERSION}"], cwd=tmp, check=True)
            deb = next(Path(tmp).glob("*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "root")], check=True)
        stamps = Path(tmp) / "root" / STAMPS
        args.out.mkdir(parents=True, exist_ok=True)
        rows = []
        for name, stamp in CLASSES.items():
            for ext in (".png", ".ogg"):
                src = stamps / f"{stamp}{ext}"
                dst = args.out / f"{name}{ext}"
                shutil.copyfile(src, dst)
                rows.append({"class": name, "file": dst.name, "source": f"{PACKAGE} {VERSION}: /{STAMPS}/{stamp}{ext}",
                             "sha256": file_sha256(dst), "licence": LICENCE, "copyright": COPYRIGHT})
    with (args.out / "attributions.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    sys.stderr.write(f"{args.out}: {len(CLASSES)} classes, {len(rows)} files\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
