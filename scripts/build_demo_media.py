"""Rebuild ``demo_media/`` (the real-media demo's pictures and recordings) from three Debian packages.

The media ship in the repository, so nobody needs this script to run the demo; it documents and repeats where every
file came from. Usage (Debian/Ubuntu with apt sources; a .deb already downloaded can be given):

    python scripts/build_demo_media.py [--tuxpaint-deb DEB] [--pysiogame-deb DEB] [--0ad-deb DEB]

- ``tuxpaint-stamps-default`` (Tux Paint stamps: photo cut-outs with transparency and their recordings): copied
  unchanged, renamed (``<class>.png``/``.ogg`` for the first stamp of a class, ``<class>-<what>`` for others);
- ``pysiogame`` (the Art4Apps drawings, 200x200 JPEG on a white card): the white background reached from the border
  is made transparent by a flood fill and the result saved as PNG (``<class>-art*.png``);
- ``0ad-data`` (animal recordings of the game 0 A.D., Ogg Vorbis inside ``public.zip``): copied unchanged
  (``<class>-0ad*.ogg``); the 1.4 GB package is only downloaded when this script runs.

``demo_media/attributions.csv`` gets one row per file: class, file, origin (package, version, path), sha256, licence,
copyright. Debian's ``gcompris-qt-data`` is reserved for independent checks of avzsl and is never used here.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

from avzsl.hashing import file_sha256
from avzsl.pipeline.synth.real_benchmark_catalogue import PACKAGES  # packages, versions, licences: one table
from avzsl.pipeline.synth.real_benchmark_media import clear_card, unpack_deb

REPO = Path(__file__).resolve().parent.parent

ART_FOLDER = "animals"  # the demo's drawings are all under art4apps/animals

# The 39 stamps of the first demo world (kept: tests and the app use some of them), then the media added for the
# world that holds test media out (pipeline/synth/real_catalogue.py).
TUX_CLASSES = {
    "dog": "animals/mammals/dogs/dog", "lion": "animals/mammals/cats/lion", "horse": "animals/mammals/equines/horse",
    "sheep": "animals/mammals/bovines/sheep", "cow": "animals/mammals/bovines/cow", "bee": "animals/insects/bee",
    "cello": "hobbies/music/string/cello", "drum": "hobbies/music/percussion/drum_tomtom_floor",
    "duck": "animals/birds/duck", "crow": "animals/birds/crow", "pig": "animals/mammals/pig",
    "elephant": "animals/mammals/elephant", "dolphin": "animals/mammals/aquatic/dolphin",
    "frog": "animals/amphibians/frog", "gorilla": "animals/mammals/apes/gorilla",
    "mouse": "animals/mammals/rodents/mouse", "owl": "animals/birds/owl", "kettle": "household/kettle",
    "camel": "animals/mammals/camel/camel", "cymbal": "hobbies/music/percussion/cymbal_crash",
    "bear": "animals/mammals/bears/bear", "rooster": "animals/birds/rooster", "whale": "animals/mammals/aquatic/whale",
    "rabbit": "animals/mammals/rodents/rabbit", "penguin": "animals/birds/penguin",
    "donkey": "animals/mammals/equines/donkey", "goat": "animals/mammals/bovines/goat",
    "violin": "hobbies/music/string/violin", "deer": "animals/mammals/deer/deer",
    "squirrel": "animals/mammals/rodents/squirrel", "zebra": "animals/mammals/equines/zebra",
    "hen": "animals/birds/hen", "bassoon": "hobbies/music/wind/bassoon", "orca": "animals/mammals/aquatic/orca",
    "bison": "animals/mammals/bovines/bison", "badger": "animals/mammals/badger",
    "bull": "animals/mammals/bovines/bull",
    "chimpanzee": "animals/mammals/apes/chimp", "caribou": "animals/mammals/deer/caribou",
    # added: second stamps and stamps of new classes
    "cow-white": "animals/mammals/bovines/cow_white", "sheep-lamb": "animals/mammals/bovines/sheep_lamb",
    "pig-golden": "animals/mammals/pig_golden", "camel-dromedary": "animals/mammals/camel/dromedary",
    "duck-drake": "animals/birds/drake", "deer-doe": "animals/mammals/deer/doe",
    "goat-mountain": "animals/mammals/bovines/mountaingoat", "drum-kit": "hobbies/music/percussion/drumkit",
    "fox": "animals/mammals/dogs/fox", "tiger": "animals/mammals/cats/tiger", "goose": "animals/birds/gander",
}  # fmt: skip
ART_PICTURES = {
    "dog-art": "dog", "dog-art-puppy": "puppy", "lion-art": "lion", "lion-art-cub": "lion_cub", "horse-art": "horse",
    "horse-art-pony": "pony", "cow-art": "cow", "sheep-art": "sheep", "pig-art": "pig", "camel-art": "camel",
    "hen-art": "hen", "hen-art-chicken": "chicken", "elephant-art": "elephant", "duck-art": "duck", "deer-art": "deer",
    "goat-art": "goat", "bison-art-buffalo": "buffalo", "goose-art": "goose", "fox-art": "fox", "tiger-art": "tiger",
}  # fmt: skip
OAD_RECORDINGS = {
    "dog-0ad-1": "audio/voice/global/civ_dog_move.ogg", "dog-0ad-2": "audio/voice/global/civ_dog_bark.ogg",
    "lion-0ad-1": "audio/actor/fauna/animal/lion_attack1.ogg",
    "lion-0ad-2": "audio/actor/fauna/animal/lion_select1.ogg",
    "horse-0ad-1": "audio/actor/fauna/animal/horse_idle1.ogg",
    "horse-0ad-2": "audio/actor/fauna/animal/horse_select2.ogg",
    "cow-0ad": "audio/actor/fauna/animal/cattle_01.ogg", "sheep-0ad": "audio/actor/fauna/animal/sheep_10.ogg",
    "pig-0ad": "audio/actor/fauna/animal/pig_10.ogg", "camel-0ad": "audio/actor/fauna/animal/camel_10.ogg",
    "hen-0ad-1": "audio/actor/fauna/animal/chicken_10.ogg", "hen-0ad-2": "audio/actor/fauna/animal/chicken_12.ogg",
    "elephant-0ad-1": "audio/actor/fauna/animal/elephant_trained1.ogg",
    "elephant-0ad-2": "audio/actor/fauna/animal/elephant_select1.ogg",
}  # fmt: skip


def row(cls_file: Path, key: str, inner: str) -> dict[str, str]:
    package, version, root, licence, copyright_ = PACKAGES[key]
    where = f"/{root}!{inner}" if key == "0ad" else f"/{root}/{inner}"  # 0 A.D.'s files are inside public.zip
    return {"class": cls_file.stem.split("-")[0], "file": cls_file.name, "source": f"{package} {version}: {where}",
            "sha256": file_sha256(cls_file), "licence": licence, "copyright": copyright_}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tuxpaint-deb", type=Path)
    parser.add_argument("--pysiogame-deb", type=Path)
    parser.add_argument("--0ad-deb", dest="oad_deb", type=Path)
    parser.add_argument("--out", type=Path, default=REPO / "demo_media")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tux = unpack_deb("tux", args.tuxpaint_deb, tmp)
        for name, stamp in TUX_CLASSES.items():
            for ext in (".png", ".ogg"):
                shutil.copyfile(tux / f"{stamp}{ext}", out / f"{name}{ext}")
                rows.append(row(out / f"{name}{ext}", "tux", f"{stamp}{ext}"))
        art = unpack_deb("art", args.pysiogame_deb, tmp) / ART_FOLDER
        for name, stem in ART_PICTURES.items():
            clear_card(art / f"{stem}.jpg", out / f"{name}.png")
            rows.append(row(out / f"{name}.png", "art", f"{ART_FOLDER}/{stem}.jpg"))
        oad = unpack_deb("0ad", args.oad_deb, tmp)
        with zipfile.ZipFile(oad) as archive:
            for name, inner in OAD_RECORDINGS.items():
                (out / f"{name}.ogg").write_bytes(archive.read(inner))
                rows.append(row(out / f"{name}.ogg", "0ad", inner))
    with (out / "attributions.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    sys.stderr.write(f"{out}: {len(rows)} files\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
