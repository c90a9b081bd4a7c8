"""Which packaged pictures and recordings make each class of the real-media benchmark (``bench/real_media_benchmark``).

Three Debian packages (the same sources as ``demo_media/``, see ``scripts/build_demo_media.py``):

- ``tux``: ``tuxpaint-stamps-default`` 2022.06.04-1, paths under ``usr/share/tuxpaint/stamps`` (photo cut-outs with
  transparency; a stamp with a recording without language suffix is the thing's own sound);
- ``art``: ``pysiogame`` 4.20.01-1, Art4Apps drawings under ``usr/share/games/pysiogame/res/images/art4apps``
  (200x200 JPEG on a white card);
- ``0ad``: ``0ad-data`` 0.0.26-1, animal recordings inside ``usr/share/games/0ad/mods/public/public.zip``.

Every class has at least one picture and one recording of its own. Tux Paint stamps whose recording is speech or may
not be the thing's own sound (letters, dreidel letters, road signs, the Apollo lander, the roll call, the Santa hat,
the checkered flag) are left out, as are the stamps whose recording is silent (giraffe, iguana, rhea, wombat) and
stamps drawn only as SVG without another picture (washing machine, vacuum cleaner). A second stamp whose recording
repeats the first one's (mountain goat / goat, dromedary / camel) gives a picture only. Class names are plain
English words the bundled GloVe 50-d vectors know (``tucan`` is ``toucan``, ``xanthia`` is ``moth``, ``chimp`` is
``chimpanzee``, ``sea_lion`` is ``sealion``, ``bathyscape`` is ``bathyscaphe``). Debian's ``gcompris-qt-data`` is
never used.
"""

from __future__ import annotations

from dataclasses import dataclass

# package key -> (Debian package, version, root of the paths below, licence, copyright)
PACKAGES = {
    "tux": ("tuxpaint-stamps-default", "2022.06.04-1", "usr/share/tuxpaint/stamps", "GPL-2.0-or-later",
            "2002-2022 by Bill Kendrick (Tux Paint)"),
    "art": ("pysiogame", "4.20.01-1", "usr/share/games/pysiogame/res/images/art4apps",
            "public domain per the package's debian/copyright (Files: images/*); Art4Apps (art4apps.org) drawings, "
            "CC-BY-SA-3.0 upstream: shared alike here",
            "Art4Apps (art4apps.org), packaged by pysiogame (Ireneusz Imiolek)"),
    "0ad": ("0ad-data", "0.0.26-1", "usr/share/games/0ad/mods/public/public.zip", "CC-BY-SA-3.0",
            "2010 Wildfire Games (0 A.D.)"),
}  # fmt: skip


@dataclass(frozen=True)
class Source:
    """One packaged file: ``package`` key of :data:`PACKAGES` and its path under the package's root."""

    package: str
    path: str


@dataclass(frozen=True)
class ClassSources:
    """A class's packaged pictures and recordings, in order: where there are two or more, the last is held out."""

    pictures: tuple[Source, ...]
    recordings: tuple[Source, ...]


def _cls(stamps: str = "", art: str = "", oad: str = "", pictures: str = "", recordings: str = "") -> ClassSources:
    """Space-separated lists: Tux Paint ``stamps`` (picture and recording), Art4Apps drawings, 0 A.D. recordings,
    and Tux Paint ``pictures`` / ``recordings`` alone."""
    tux = stamps.split()
    pics = [Source("tux", f"{s}.png") for s in tux + pictures.split()]
    pics += [Source("art", f"{a}.jpg") for a in art.split()]
    recs = [Source("tux", f"{s}.ogg") for s in tux + recordings.split()] + [Source("0ad", o) for o in oad.split()]
    return ClassSources(tuple(pics), tuple(recs))


_A = "animals/"
_M = "animals/mammals/"
_O = "audio/actor/fauna/animal/"

CATALOGUE: dict[str, ClassSources] = {
    "frog": _cls(f"{_A}amphibians/frog", art=f"{_A}frog"),
    "blackbird": _cls(f"{_A}birds/blackbird", art=f"{_A}blackbird"),
    "crow": _cls(f"{_A}birds/crow", art=f"{_A}crow"),
    "cuckoo": _cls(f"{_A}birds/cuckoo"),
    "duck": _cls(f"{_A}birds/duck {_A}birds/drake", art=f"{_A}duck"),
    "goose": _cls(f"{_A}birds/gander", art=f"{_A}goose"),
    "hen": _cls(f"{_A}birds/hen", art=f"{_A}hen {_A}chicken", oad=f"{_O}chicken_10.ogg {_O}chicken_12.ogg"),
    "heron": _cls(f"{_A}birds/heron_greatblue_flying"),
    "lark": _cls(f"{_A}birds/lark"),
    "owl": _cls(f"{_A}birds/owl", art=f"{_A}owl"),
    "penguin": _cls(f"{_A}birds/penguin", art=f"{_A}penguin"),
    "quetzal": _cls(f"{_A}birds/quetzal"),
    "rooster": _cls(f"{_A}birds/rooster", art=f"{_A}rooster"),
    "seagull": _cls(f"{_A}birds/seagull"),
    "toucan": _cls(f"{_A}birds/tucan"),
    "turkey": _cls(f"{_A}birds/turkey", art=f"{_A}turkey"),
    "vulture": _cls(f"{_A}birds/vulture", art=f"{_A}vulture"),
    "flamingo": _cls(art=f"{_A}flamingo", oad=f"{_O}flamingo_10.ogg"),
    "peacock": _cls(art=f"{_A}peacock", oad=f"{_O}peacock_call_01.ogg"),
    "bee": _cls(f"{_A}insects/bee", art=f"{_A}bee"),
    "grasshopper": _cls(f"{_A}insects/grasshopper"),
    "hornet": _cls(f"{_A}insects/hornet"),
    "mosquito": _cls(art=f"{_A}mosquito", recordings=f"{_A}insects/mosquito"),
    "moth": _cls(f"{_A}insects/xanthia"),
    "chimpanzee": _cls(f"{_M}apes/chimp", art=f"{_A}chimp"),
    "gorilla": _cls(f"{_M}apes/gorilla", art=f"{_A}gorilla"),
    "dolphin": _cls(f"{_M}aquatic/dolphin", art=f"{_A}dolphin"),
    "orca": _cls(f"{_M}aquatic/orca"),
    "whale": _cls(f"{_M}aquatic/whale", art=f"{_A}whale"),
    "sealion": _cls(f"{_M}aquatic/sea_lion"),
    "badger": _cls(f"{_M}badger"),
    "bear": _cls(f"{_M}bears/bear", art=f"{_A}bear"),
    "bison": _cls(f"{_M}bovines/bison", art=f"{_A}buffalo"),
    "bull": _cls(f"{_M}bovines/bull", art=f"{_A}bull"),
    "cow": _cls(f"{_M}bovines/cow {_M}bovines/cow_white", art=f"{_A}cow",
                oad=f"{_O}cattle_01.ogg {_O}cattle_02.ogg"),
    # (the mountain goat's recording correlates 0.88 with the goat's, the dromedary's 0.74 with the camel's)
    "goat": _cls(f"{_M}bovines/goat", pictures=f"{_M}bovines/mountaingoat", art=f"{_A}goat"),
    "ram": _cls(f"{_M}bovines/ram", art=f"{_A}ram"),
    "sheep": _cls(f"{_M}bovines/sheep {_M}bovines/sheep_lamb", art=f"{_A}sheep", oad=f"{_O}sheep_10.ogg"),
    "camel": _cls(f"{_M}camel/camel", pictures=f"{_M}camel/dromedary", art=f"{_A}camel", oad=f"{_O}camel_10.ogg"),
    "lion": _cls(f"{_M}cats/lion", art=f"{_A}lion {_A}lion_cub",
                 oad=f"{_O}lion_attack1.ogg {_O}lion_select1.ogg"),
    "tiger": _cls(f"{_M}cats/tiger", art=f"{_A}tiger"),
    "caribou": _cls(f"{_M}deer/caribou"),
    "deer": _cls(f"{_M}deer/deer {_M}deer/doe", art=f"{_A}deer"),
    "dog": _cls(f"{_M}dogs/dog", art=f"{_A}dog {_A}puppy", oad="audio/voice/global/civ_dog_bark.ogg"),
    "fox": _cls(f"{_M}dogs/fox", art=f"{_A}fox"),
    "elephant": _cls(f"{_M}elephant", art=f"{_A}elephant",
                     oad=f"{_O}elephant_select1.ogg {_O}elephant_trained1.ogg"),
    "donkey": _cls(f"{_M}equines/donkey", art=f"{_A}donkey"),
    "horse": _cls(f"{_M}equines/horse", art=f"{_A}horse {_A}pony", oad=f"{_O}horse_idle1.ogg {_O}horse_select2.ogg"),
    "zebra": _cls(f"{_M}equines/zebra", art=f"{_A}zebra"),
    "ferret": _cls(f"{_M}ferret"),
    "hippopotamus": _cls(f"{_M}hippopotamus", art=f"{_A}hippopotamus"),
    "pig": _cls(f"{_M}pig {_M}pig_golden", art=f"{_A}pig", oad=f"{_O}pig_10.ogg"),
    "beaver": _cls(f"{_M}rodents/beaver", art=f"{_A}beaver"),
    "mouse": _cls(f"{_M}rodents/mouse", art=f"{_A}mouse"),
    "rabbit": _cls(f"{_M}rodents/rabbit", art=f"{_A}rabbit"),
    "squirrel": _cls(f"{_M}rodents/squirrel", art=f"{_A}squirrel"),
    "koala": _cls("animals/marsupials/koala", art=f"{_A}koala"),
    "bat": _cls("seasonal/halloween/bat_left", art=f"{_A}bat"),
    "cat": _cls("seasonal/halloween/blackcat", art=f"{_A}cat {_A}kitten"),
    "spider": _cls("seasonal/halloween/spider", art=f"{_A}spider"),
    "ghost": _cls("seasonal/halloween/ghost"),
    "apple": _cls("food/fruit/apple_red", art="fruit_n_veg/apple"),
    "candy": _cls("seasonal/christmas/hard_candy", art="food/candy"),
    "bottle": _cls(art="food/water_bottle", recordings="household/dishes/bottle"),
    "glass": _cls("household/dishes/glass"),
    "kettle": _cls("household/kettle"),
    "toilet": _cls("household/toilet"),
    "scissors": _cls("household/arttools/scissors_small_closed household/arttools/scissors_small_open"),
    "hammer": _cls("household/tools/hammer"),
    "mallet": _cls("household/tools/mallet_metal"),
    "saw": _cls("household/tools/saw"),
    "camera": _cls("hobbies/camera_35mm"),
    "cymbal": _cls("hobbies/music/percussion/cymbal_crash"),
    "drum": _cls("hobbies/music/percussion/drum_tomtom_floor hobbies/music/percussion/drumkit"),
    "cello": _cls("hobbies/music/string/cello"),
    "violin": _cls("hobbies/music/string/violin"),
    "bassoon": _cls("hobbies/music/wind/bassoon"),
    "lightning": _cls("naturalforces/lightningbolt"),
    "fireworks": _cls("seasonal/newyears/fireworks"),
    "firetruck": _cls("vehicles/emergency/firetruck"),
    "bathyscaphe": _cls("vehicles/ship/cartoon/bathyscape"),
}  # fmt: skip
