"""Which real pictures and recordings (``demo_media/``) make the clips of each class of the real-media demo world.

Every class has one or more *pairs* (a picture and a recording, file stems in ``demo_media/``) for clips it may be
trained on, and every class the protocol trains on (seen and validation-unseen) also has a *held-out* pair: a
picture and a recording used by no other pair of that class, from which its test clips are made. So the test
split asks what the demo should show: is a dog recognised in a picture and a recording the model never saw?
Test-unseen classes are never trained on, so all their pairs make test clips. A seen class with a third pair uses
it for its stage-1 validation clips (trained on in stage 2 only), so the epoch and the calibration are chosen on
media stage 1 did not train on, as a benchmark's validation videos are new videos of their class.

Sources (``demo_media/attributions.csv`` has every file's origin, sha256, licence and copyright): the Tux Paint
stamp collection (photo cut-outs with their own recordings: ``cow``, ``cow-white``, ...), the Art4Apps drawings
shipped by Debian's ``pysiogame`` (``*-art``), and animal recordings of the game 0 A.D. (``*-0ad*``). A class
with two Tux Paint stamps holds one of them out; a class with one stamp trains on the stamp and on a drawing with
a 0 A.D. recording, and holds out another drawing with another 0 A.D. recording. Where a class has only one
recording, its extra training pairs reuse it with another picture (more pictures to learn the look from, no new
sound); a held-out pair never shares a file with the class's training pairs (a test checks this).

The split is by name: 9 seen classes, 3 validation-unseen, 7 test-unseen. Each unseen class has a relative among
the classes trained before it (goat / sheep, caribou / deer, bison / cow, goose / duck, fox / dog, tiger / lion,
cymbal / drum; for validation duck / hen, deer / sheep, camel / horse), so zero-shot recognition can work through
what the class names' word vectors know. Classes were chosen by the media the packages hold (only a class with a
held-out picture *and* recording can be trained on), never by results on the test split.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MediaPair:
    """One picture and one recording (file stems in ``demo_media/``: ``<picture>.png``, ``<recording>.ogg``)."""

    picture: str
    recording: str

    @property
    def tag(self) -> str:
        """Name of the clips made from this pair (``<picture>__<recording>``)."""
        return f"{self.picture}__{self.recording}"


@dataclass(frozen=True)
class ClassMedia:
    """The pairs of one class: ``train`` (its training clips), ``validation`` (its stage-1 validation clips, trained
    on in stage 2 only) and ``held_out`` (its test clips, never trained on)."""

    train: tuple[MediaPair, ...]
    held_out: tuple[MediaPair, ...] = ()
    validation: tuple[MediaPair, ...] = ()

    @property
    def pairs(self) -> tuple[MediaPair, ...]:
        return self.train + self.validation + self.held_out


def _pairs(*items: tuple[str, str]) -> tuple[MediaPair, ...]:
    return tuple(MediaPair(picture, recording) for picture, recording in items)


SEEN = ("dog", "lion", "horse", "cow", "sheep", "pig", "hen", "elephant", "drum")
VAL_UNSEEN = ("duck", "deer", "camel")
TEST_UNSEEN = ("goat", "caribou", "bison", "goose", "fox", "tiger", "cymbal")

CATALOGUE: dict[str, ClassMedia] = {
    # seen: trained on `train` in stage 1 (validated on `validation`), on both in stage 2; tested on `held_out`
    "dog": ClassMedia(_pairs(("dog", "dog")), _pairs(("dog-art", "dog-0ad-2")), _pairs(("dog-art-puppy", "dog-0ad-1"))),
    "lion": ClassMedia(_pairs(("lion", "lion")), _pairs(("lion-art", "lion-0ad-2")),
                       _pairs(("lion-art-cub", "lion-0ad-1"))),
    "horse": ClassMedia(_pairs(("horse", "horse")), _pairs(("horse-art", "horse-0ad-2")),
                        _pairs(("horse-art-pony", "horse-0ad-1"))),
    "cow": ClassMedia(_pairs(("cow", "cow")), _pairs(("cow-white", "cow-white")), _pairs(("cow-art", "cow-0ad"))),
    "sheep": ClassMedia(_pairs(("sheep", "sheep")), _pairs(("sheep-lamb", "sheep-lamb")),
                        _pairs(("sheep-art", "sheep-0ad"))),
    "pig": ClassMedia(_pairs(("pig", "pig")), _pairs(("pig-golden", "pig-golden")), _pairs(("pig-art", "pig-0ad"))),
    "hen": ClassMedia(_pairs(("hen", "hen")), _pairs(("hen-art", "hen-0ad-2")),
                      _pairs(("hen-art-chicken", "hen-0ad-1"))),
    "elephant": ClassMedia(_pairs(("elephant", "elephant")), _pairs(("elephant-art", "elephant-0ad-2")),
                           _pairs(("elephant", "elephant-0ad-1"))),
    "drum": ClassMedia(_pairs(("drum", "drum")), _pairs(("drum-kit", "drum-kit"))),
    # validation-unseen: validation classes in stage 1, trained in stage 2; test clips from the held-out pair
    "duck": ClassMedia(_pairs(("duck", "duck"), ("duck-art", "duck")), _pairs(("duck-drake", "duck-drake"))),
    "deer": ClassMedia(_pairs(("deer", "deer"), ("deer-art", "deer")), _pairs(("deer-doe", "deer-doe"))),
    # (the dromedary stamp's recording correlates 0.74 with the camel stamp's: the held-out sound is 0 A.D.'s)
    "camel": ClassMedia(_pairs(("camel", "camel"), ("camel-art", "camel")), _pairs(("camel-dromedary", "camel-0ad"))),
    # test-unseen: never trained on; every pair makes test clips
    # (the mountain goat stamp's recording correlates 0.88 with the goat stamp's: goat cannot hold media out)
    "goat": ClassMedia(_pairs(("goat", "goat"), ("goat-art", "goat"), ("goat-mountain", "goat-mountain"))),
    "caribou": ClassMedia(_pairs(("caribou", "caribou"))),
    "bison": ClassMedia(_pairs(("bison", "bison"), ("bison-art-buffalo", "bison"))),
    "goose": ClassMedia(_pairs(("goose", "goose"), ("goose-art", "goose"))),
    "fox": ClassMedia(_pairs(("fox", "fox"), ("fox-art", "fox"))),
    "tiger": ClassMedia(_pairs(("tiger", "tiger"), ("tiger-art", "tiger"))),
    "cymbal": ClassMedia(_pairs(("cymbal", "cymbal"))),
}  # fmt: skip


def media_files() -> list[str]:
    """Every ``demo_media/`` file name the catalogue uses (sorted)."""
    names = set()
    for media in CATALOGUE.values():
        for pair in media.pairs:
            names |= {f"{pair.picture}.png", f"{pair.recording}.ogg"}
    return sorted(names)
