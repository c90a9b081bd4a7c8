"""Split folders that break the protocol are refused before training and before evaluating (issue 20, section 1).

Each fault is a real split folder written to disk next to a real cache (the synthetic cache writer's HDF5 files;
for the ambiguous stem, a cache extracted from real tiny videos, one of which fails to decode). Before this check
every one of them trained and evaluated to exit 0 with metrics that were not true (a test-unseen class trained on:
U 37.5 -> 100; an empty test-unseen split: U nan). Now ``avzsl-train`` and ``avzsl-evaluate`` exit 2 with one line
naming the file, the row (or class line) and the rule.
"""

from __future__ import annotations

import csv
import shutil
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest

from avzsl.pipeline.cli import evaluate as cli_evaluate
from avzsl.pipeline.cli import extract as cli_extract
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.data.split_checks import check_splits
from avzsl.pipeline.data.splits import load_splits, write_protocol_splits, write_split_folder
from avzsl.pipeline.run.layout import IDENTITY_JSON
from avzsl.pipeline.synth.features import SyntheticSpec, make_synthetic_cache
from tests.logtext import refusal_text
from tests.media import write_av, write_text_as_mp4

# 4 seen (class000-003), 2 validation-unseen (class004-005), 2 test-unseen (class006-007) classes x 8 videos.
SPEC = SyntheticSpec(num_seen=4, num_val_unseen=2, num_test_unseen=2, videos_per_class=8)


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("split-checks")
    make_synthetic_cache(root / "cache", root / "splits", SPEC)
    return root / "cache", root / "splits"


def _train(cache: Path, splits: Path, out: Path) -> int:
    return cli_train.main(["--cache", str(cache), "--splits", str(splits), "--out", str(out), "--epochs", "1",
                           "--batch-size", "16", "--device", "cpu"])


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))[1:]


def _append(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(f"{line}\n" for line in lines))


def _copy_rows(folder: Path, source: str, target: str, label: str) -> None:
    """Append ``source``'s rows of class ``label`` to ``target``'s video list."""
    rows = [r for r in _rows(folder / f"{source}.csv") if r[1] == label]
    _append(folder / f"{target}.csv", *(",".join(r) for r in rows))


def unseen_trained_on(folder: Path) -> None:
    """A test-unseen class that is also a stage-2 training class (its test videos trained on)."""
    _append(folder / "stage_2_train.txt", "class006")
    _copy_rows(folder, "stage_2_test_unseen", "stage_2_train", "class006")


def val_and_test_unseen(folder: Path) -> None:
    """A class both validation-unseen and test-unseen: stage 2 trains on it."""
    _append(folder / "stage_1_val_unseen.txt", "class006")
    _append(folder / "stage_2_train.txt", "class006")
    _copy_rows(folder, "stage_2_test_unseen", "stage_1_val_unseen", "class006")
    _copy_rows(folder, "stage_2_test_unseen", "stage_2_train", "class006")


def video_in_train_and_test(folder: Path) -> None:
    """One stage_2_test_seen video also listed in stage_2_train."""
    _append(folder / "stage_2_train.csv", ",".join(_rows(folder / "stage_2_test_seen.csv")[0]))


def empty_test_unseen(folder: Path) -> None:
    """``stage_2_test_unseen.csv`` with a header and no row."""
    (folder / "stage_2_test_unseen.csv").write_text("filename,label\n", encoding="utf-8")


def wrong_label(folder: Path) -> None:
    """A class000 test video labelled class001 (a dog video labelled cat)."""
    path = folder / "stage_2_test_seen.csv"
    rows = _rows(path)
    index = next(i for i, r in enumerate(rows) if r[1] == "class000")
    rows[index][1] = "class001"
    path.write_text("filename,label\n" + "".join(f"{a},{b}\n" for a, b in rows), encoding="utf-8")


def class_twice(folder: Path) -> None:
    """``class000`` and ``CLASS000`` in the two stage-2 class lists that build the candidate columns."""
    for name in ("stage_2_train", "stage_2_test_seen"):
        _append(folder / f"{name}.txt", "CLASS000")


FAULTS: dict[str, tuple[Callable[[Path], None], str, str]] = {
    # fault: (how to make it, the file the refusal names, the rule it names)
    "test-unseen class trained on": (unseen_trained_on, "stage_2_test_unseen.txt: line 1", "[class groups]"),
    "validation- and test-unseen": (val_and_test_unseen, "stage_2_test_unseen.txt: line 1", "[class groups]"),
    "video in train and test": (video_in_train_and_test, "stage_2_train.csv: row", "[one split per video]"),
    "empty test-unseen list": (empty_test_unseen, "stage_2_test_unseen.csv", "[no empty evaluation split]"),
    "label disagrees with the cache": (wrong_label, "stage_2_test_seen.csv: row", "[labels]"),
    "class listed twice": (class_twice, "stage_2_train.txt: line 7", "[unique classes]"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_leaky_split_folder_is_refused_before_training(small_cache, tmp_path: Path, fault: str) -> None:
    cache, good = small_cache
    make, where, rule = FAULTS[fault]
    splits = tmp_path / "splits"
    shutil.copytree(good, splits)
    make(splits)
    run = tmp_path / "run"
    assert _train(cache, splits, run) == 2
    text = refusal_text(run / "train.log")
    assert f"{splits}/{where}" in text and rule in text, text
    assert not (run / "metrics.json").exists() and not (run / "model.pt").exists()


def test_leaky_split_folder_is_refused_before_evaluating_an_older_run(small_cache, tmp_path: Path, caplog) -> None:
    """A run written before identities were recorded cannot tell that its split folder changed; the split checks
    still refuse the folder once it breaks the protocol."""
    cache, good = small_cache
    splits = tmp_path / "splits"
    shutil.copytree(good, splits)
    run = tmp_path / "run"
    assert _train(cache, splits, run) == 0
    (run / IDENTITY_JSON).unlink()  # as written by an older avzsl
    before = (run / "metrics.json").read_bytes()
    unseen_trained_on(splits)
    assert cli_evaluate.main(["--run", str(run), "--device", "cpu"]) == 2
    assert "stage_2_test_unseen.txt: line 1" in caplog.text and "[class groups]" in caplog.text
    assert (run / "metrics.json").read_bytes() == before


def test_unicode_spellings_of_one_class_are_one_class(tmp_path: Path) -> None:
    """``Café`` typed in NFC in one list and in NFD in another is one class: a test-unseen class trained on."""
    nfc, nfd = unicodedata.normalize("NFC", "Café"), unicodedata.normalize("NFD", "Café")
    assert nfc != nfd
    classes = {"stage_1_train": ["dog", nfc], "stage_1_val_seen": ["dog", nfc], "stage_1_val_unseen": ["cat"],
               "stage_2_train": ["dog", nfc, "cat"], "stage_2_test_seen": ["dog", nfc, "cat"],
               "stage_2_test_unseen": [nfd, "owl"]}
    rows = {"stage_1_train": [("d1", "dog"), ("c1", nfc)], "stage_1_val_seen": [("d2", "dog")],
            "stage_1_val_unseen": [("k1", "cat")], "stage_2_train": [("d1", "dog"), ("c1", nfc), ("d2", "dog"),
                                                                      ("k1", "cat")],
            "stage_2_test_seen": [("d3", "dog"), ("k2", "cat")], "stage_2_test_unseen": [("o1", "owl")]}
    write_split_folder(tmp_path, classes, rows)
    cache = {"d1": "dog", "d2": "dog", "d3": "dog", "c1": nfc, "k1": "cat", "k2": "cat", "o1": "owl"}
    problems = check_splits(load_splits(tmp_path), cache)
    # Split files are read in NFC (docs/class_names.md), so the message names the class as it is read.
    assert f"stage_2_test_unseen.txt: line 1: class {nfc!r} is also a stage_1_train class" in problems[0]
    assert all("[class groups]" in p for p in problems)
    # A label in NFD of a class listed in NFC is that class, not a disagreement with the cache.
    rows["stage_2_test_unseen"] = [("o1", "OWL")]
    classes["stage_2_test_unseen"] = ["owl"]
    rows["stage_2_test_seen"] = [("d3", "dog"), ("c2", nfd)]
    write_split_folder(tmp_path, classes, rows)
    assert check_splits(load_splits(tmp_path), {**cache, "c2": nfc}) == []


def test_the_builtin_benchmark_splits_and_written_folders_pass(small_cache) -> None:
    """Every rule holds for the released benchmark splits (as if the cache held every listed video with its
    listed label) and for folders written by ``write_protocol_splits``."""
    from avzsl.data_manifests import benchmark_splits

    for name in ("ucf", "activitynet"):
        for variant in ("main", "cls"):
            splits = benchmark_splits(name, variant)
            cache = {f: label for stage in splits.stages.values() for f, label in stage.videos}
            assert check_splits(splits, cache) == [], (name, variant)
    _, folder = small_cache
    ids = {r[0]: r[1] for name in ("stage_2_train", "stage_2_test_seen", "stage_2_test_unseen")
           for r in _rows(folder / f"{name}.csv")}
    assert check_splits(load_splits(folder), ids) == []


@pytest.fixture(scope="module")
def cache_with_a_failed_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A cache extracted from real tiny videos where ``dog/x.mp4`` and ``cat/x.mp4`` share the stem ``x`` and
    ``cat/x.mp4`` is not a video (it fails to decode: the cache holds only the dog's)."""
    root = tmp_path_factory.mktemp("failed-stem")
    videos = root / "videos"
    tones = {"piano/a.mp4": 300, "piano/b.mp4": 330, "piano/c.mp4": 360, "piano/d.mp4": 390, "violin/a.mp4": 600,
             "dog/x.mp4": 900}
    for rel, freq in tones.items():
        (videos / rel).parent.mkdir(parents=True, exist_ok=True)
        write_av(videos / rel, duration_s=1.2, size=(32, 24), freq_hz=freq)
    (videos / "cat").mkdir()
    write_text_as_mp4(videos / "cat" / "x.mp4")
    cache = root / "cache"
    args = ["--videos", str(videos), "--out", str(cache), "--random-weights", "--seed", "3", "--workers", "1",
            "--batch-size", "8", "--no-progress"]
    assert cli_extract.main(args) in (0, 1)  # 1: a video failed, as intended
    assert "cat/x.mp4" in (cache / "failures.csv").read_text()
    return root, cache


@pytest.mark.slow  # extracts 7 tiny videos with the real encoders (~20 s alone, over a minute on a busy machine)
def test_bare_stem_of_a_failed_video_is_refused_as_ambiguous(cache_with_a_failed_video, tmp_path: Path) -> None:
    root, cache = cache_with_a_failed_video
    splits = write_protocol_splits(tmp_path / "splits", {"piano": [f"piano/{v}.mp4" for v in "abcd"],
                                                         "violin": ["violin/a.mp4"], "dog": ["dog/x.mp4"],
                                                         "cat": ["cat/x.mp4"]},
                                   ["piano"], ["violin"], ["dog", "cat"])
    # The cat's row names its video by bare stem, as the benchmarks do: before, it matched the dog's video (the only
    # "x" the cache holds) and evaluated it as a cat, without a word.
    path = splits / "stage_2_test_unseen.csv"
    path.write_text(path.read_text().replace("cat/x.mp4,cat", "x,cat"), encoding="utf-8")
    run = tmp_path / "run"
    code = cli_train.main(["--cache", str(cache), "--splits", str(splits), "--out", str(run), "--epochs", "1",
                           "--batch-size", "4", "--device", "cpu"])
    text = refusal_text(run / "train.log")
    assert code == 2, text
    assert f"{path}: row 3 ('x', 'cat'): 'x' names 2 input videos of the cache" in text
    assert "[unambiguous names]" in text
