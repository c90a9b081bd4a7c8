"""The real-media benchmark world (bench/real_media_benchmark.py): a tiny world built from ``demo_media/`` through the
same code path as the packaged one (media placed with attributions, clips, split by name, held-out media)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avzsl.hashing import file_sha256
from avzsl.pipeline.data.splits import read_video_list
from avzsl.pipeline.synth.real_benchmark import (
    HELD_OUT_PREFIX,
    ClassFiles,
    build_world,
    read_attributions,
    split_by_name,
)
from avzsl.pipeline.synth.real_benchmark_catalogue import CATALOGUE, PACKAGES
from avzsl.pipeline.synth.real_benchmark_media import source_row, staged_name
from avzsl.pipeline.synth.real_media import media_dir

TRAINING_LISTS = ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen", "stage_2_train")

# class -> (pictures, recordings): file names in demo_media/, the last of each held out where there are two
TINY = {
    "cow": (("cow.png", "cow-white.png", "cow-art.png"), ("cow.ogg", "cow-white.ogg", "cow-0ad.ogg")),
    "dog": (("dog.png", "dog-art.png"), ("dog.ogg", "dog-0ad-1.ogg")),
    "lion": (("lion.png", "lion-art.png"), ("lion.ogg",)),
    "sheep": (("sheep.png",), ("sheep.ogg", "sheep-0ad.ogg")),
    "goat": (("goat.png",), ("goat.ogg",)),
}


def tiny_classes() -> tuple[dict[str, ClassFiles], dict[Path, dict[str, str]]]:
    root = media_dir()
    rows = {root / row["file"]: row for row in read_attributions(root / "attributions.csv")}
    classes = {name: ClassFiles(tuple(root / p for p in pics), tuple(root / r for r in recs))
               for name, (pics, recs) in TINY.items()}
    return classes, rows


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("world")
    classes, rows = tiny_classes()
    summary = build_world(out, classes, rows, clips=2, seed=0, test_unseen=1, val_unseen=1)
    return out, summary


def test_split_by_name_sizes_and_determinism() -> None:
    names = [f"class{i}" for i in range(82)]
    seen, val, test = split_by_name(names, seed=0)
    assert (len(seen), len(val), len(test)) == (52, 15, 15)
    assert not (set(seen) & set(val) or set(seen) & set(test) or set(val) & set(test))
    assert set(seen) | set(val) | set(test) == set(names)
    assert split_by_name(list(reversed(names)), seed=0) == (seen, val, test)  # names only, not their order
    assert split_by_name(names, seed=1) != (seen, val, test)
    with pytest.raises(ValueError, match="cannot give 15 test-unseen"):
        split_by_name(names[:31])


def test_pairs_hold_out_the_last_file_of_each_modality() -> None:
    p, r = [Path(f"p{i}") for i in range(3)], [Path(f"r{i}") for i in range(2)]
    train, held = ClassFiles(tuple(p), tuple(r)).pairs()
    assert held == (p[2], r[1])
    assert train == [(p[0], r[0]), (p[1], r[0])]
    assert ClassFiles(tuple(p), tuple(r)).held_out_files() == {p[2], r[1]}
    train, held = ClassFiles((p[0], p[1]), (r[0],)).pairs()  # one recording: shared, the picture is held out
    assert (train, held) == ([(p[0], r[0])], (p[1], r[0]))
    assert ClassFiles((p[0],), (r[0],)).pairs() == ([(p[0], r[0])], None)
    with pytest.raises(ValueError, match="at least one picture and one recording"):
        ClassFiles((), (r[0],)).pairs()


def test_world_has_the_groups_and_the_split_folder(world: tuple[Path, dict]) -> None:
    out, summary = world
    assert summary["classes"] == 5
    assert (len(summary["seen"]), len(summary["val_unseen"]), len(summary["test_unseen"])) == (3, 1, 1)
    assert json.loads((out / "benchmark.json").read_text()) == summary
    classes_in = {stage: (out / "splits" / f"{stage}.txt").read_text().split() for stage in
                  ("stage_1_train", "stage_1_val_unseen", "stage_2_test_unseen")}
    assert classes_in == {"stage_1_train": summary["seen"], "stage_1_val_unseen": summary["val_unseen"],
                          "stage_2_test_unseen": summary["test_unseen"]}
    for rel in (v for v, _ in read_video_list(out / "splits" / "stage_2_test_unseen.csv")):
        assert (out / "videos" / rel).is_file()


def test_attributions_cover_every_media_file(world: tuple[Path, dict]) -> None:
    out, _ = world
    rows = {row["file"]: row for row in read_attributions(out / "attributions.csv")}
    files = {p.relative_to(out).as_posix() for p in (out / "media").rglob("*") if p.is_file()}
    assert files == set(rows) and len(files) == sum(len(p) + len(r) for p, r in TINY.values())
    for rel, row in rows.items():
        assert row["sha256"] == file_sha256(out / rel)
        assert row["licence"] and row["copyright"] and row["source"]


def test_held_out_media_never_in_training_lists(world: tuple[Path, dict]) -> None:
    out, summary = world
    trained = set(summary["seen"]) | set(summary["val_unseen"])
    held = {name for name, (p, r) in TINY.items() if len(p) > 1 or len(r) > 1}
    assert set(summary["held_out"]) == held & trained
    training = {v for stage in TRAINING_LISTS for v, _ in read_video_list(out / "splits" / f"{stage}.csv")}
    test_seen = {v for v, _ in read_video_list(out / "splits" / "stage_2_test_seen.csv")}
    for name in held & trained:
        ids = set(summary["held_out"][name])
        assert ids and all(Path(v).name.startswith(HELD_OUT_PREFIX) for v in ids)
        assert ids <= test_seen and not ids & training
        assert {v for v in test_seen if v.startswith(f"{name}/")} == ids  # its test clips are all held-out ones
    # and the held-out files make no training pair
    classes, _ = tiny_classes()
    for files in classes.values():
        train, _ = files.pairs()
        assert not {f for pair in train for f in pair} & files.held_out_files()


def test_rerun_keeps_written_clips(world: tuple[Path, dict]) -> None:
    out, summary = world
    clips = sorted((out / "videos").rglob("*.mp4"))
    assert len(clips) == summary["videos"] == 5 * 2 + len(set(TINY) - {"goat"})
    before = {p: p.stat().st_mtime_ns for p in clips}
    clips[0].unlink()
    classes, rows = tiny_classes()
    again = build_world(out, classes, rows, clips=2, seed=0, test_unseen=1, val_unseen=1)
    assert again == summary
    after = sorted((out / "videos").rglob("*.mp4"))
    assert after == clips
    assert all(p.stat().st_mtime_ns == before[p] for p in clips[1:])  # only the missing clip was written


def test_a_file_without_attribution_is_an_error(tmp_path: Path) -> None:
    classes, rows = tiny_classes()
    missing = classes["goat"].pictures[0]
    del rows[missing]
    with pytest.raises(ValueError, match="goat.png: no attribution"):
        build_world(tmp_path, {"goat": classes["goat"]}, rows, test_unseen=0, val_unseen=0)


def test_catalogue_classes_are_glove_words_with_picture_and_recording() -> None:
    from avzsl.extractors.text.class_names import ClassNameEmbedder

    assert len(CATALOGUE) >= 80
    embedded = ClassNameEmbedder(None).embed(sorted(CATALOGUE))  # raises OOVError for an unknown word
    assert embedded.phrases == sorted(CATALOGUE)  # each name is one word, embedded as itself
    for name, sources in CATALOGUE.items():
        assert sources.pictures and sources.recordings, name
        assert all(s.package in PACKAGES for s in sources.pictures + sources.recordings)
        staged = [staged_name(s) for s in sources.pictures + sources.recordings]
        assert len(set(staged)) == len(staged), name  # one file per name in media/<class>/
    assert not any("gcompris" in source_row(s)["source"] for c in CATALOGUE.values() for s in c.pictures)
