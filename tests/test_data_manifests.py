"""The shipped benchmark split files and their API (avgzsl_conventions.md section 1)."""

from __future__ import annotations

import csv
from importlib import resources

import numpy as np
import pytest

from avzsl.data_manifests import (
    BENCHMARKS,
    all_classes,
    benchmark_splits,
    class_phrases,
    dataset_key,
    label_codes,
    released_text_embeddings,
)

# (classes, videos) per stage split, conventions section 1 table.
EXPECTED = {
    "ucf": {
        "stage_1_train": (30, 3174),
        "stage_1_val_seen": (30, 353),
        "stage_1_val_unseen": (12, 1467),
        "stage_2_train": (42, 4994),
        "stage_2_test_seen": (42, 555),
        "stage_2_test_unseen": (9, 1267),
    },
    "activitynet": {
        "stage_1_train": (99, 9204),
        "stage_1_val_seen": (99, 1023),
        "stage_1_val_unseen": (51, 4307),
        "stage_2_train": (150, 14534),
        "stage_2_test_seen": (150, 1615),
        "stage_2_test_unseen": (50, 4199),
    },
    "vggsound": {
        "stage_1_train": (138, 70351),
        "stage_1_val_seen": (138, 7817),
        "stage_1_val_unseen": (69, 3102),
        "stage_2_train": (207, 81270),
        "stage_2_test_seen": (207, 9032),
        "stage_2_test_unseen": (69, 3450),
    },
}
ALL_CLASS_COUNT = {"ucf": 101, "activitynet": 200, "vggsound": 309}
# cls variant: test-unseen classes, and the videos left after dropping the other classes' rows (counted
# independently with grep -v on the main csv for the dropped classes named in the manifests README).
CLS_TEST_UNSEEN = {"ucf": (6, 845), "activitynet": (48, 4052), "vggsound": (64, 3200)}
CLS_DROPPED = {
    "ucf": {"BandMarching", "BrushingTeeth", "Typing"},
    "activitynet": {"Brushingteeth", "Knitting"},
    "vggsound": {"airplane", "helicopter", "sharpen knife", "thunder", "wind chime"},
}


@pytest.fixture(scope="module", params=BENCHMARKS)
def main_and_cls(request):
    return request.param, benchmark_splits(request.param, "main"), benchmark_splits(request.param, "cls")


def test_main_split_counts(main_and_cls):
    name, main, _ = main_and_cls
    for stage, (n_classes, n_videos) in EXPECTED[name].items():
        split = main[stage]
        assert len(split.classes) == n_classes, stage
        assert len(set(c.lower() for c in split.classes)) == n_classes, f"{stage}: repeated class"
        assert len(split.videos) == n_videos, stage
        assert len(split.videos_of_listed_classes()) == n_videos, f"{stage}: rows of unlisted classes"
    assert len(all_classes(name)) == ALL_CLASS_COUNT[name]


def test_cls_split_counts(main_and_cls):
    name, main, cls = main_and_cls
    for stage in EXPECTED[name]:
        if stage == "stage_2_test_unseen":
            continue
        assert cls[stage].classes == main[stage].classes, stage
        assert cls[stage].videos_of_listed_classes() == main[stage].videos, stage
    unseen = cls["stage_2_test_unseen"]
    n_classes, n_videos = CLS_TEST_UNSEEN[name]
    assert len(unseen.classes) == n_classes
    assert len(unseen.videos) == EXPECTED[name]["stage_2_test_unseen"][1]  # csv is main's
    assert len(unseen.videos_of_listed_classes()) == n_videos
    dropped = set(main["stage_2_test_unseen"].classes) - set(unseen.classes)
    assert dropped == CLS_DROPPED[name]


def test_split_structure(main_and_cls):
    name, main, _ = main_and_cls
    s1 = [main[s] for s in ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen")]
    union = {v for split in s1 for v in split.videos}
    assert sum(len(split.videos) for split in s1) == len(union), "stage 1 splits overlap"
    assert set(main["stage_2_train"].videos) == union
    lower = lambda names: {c.lower() for c in names}  # noqa: E731
    trained = lower(main["stage_2_train"].classes) | lower(main["stage_1_train"].classes)
    assert lower(main["stage_2_train"].classes) == lower(main["stage_1_train"].classes) | lower(
        main["stage_1_val_unseen"].classes
    )
    assert not lower(main["stage_2_test_unseen"].classes) & trained
    assert lower(main["stage_2_test_seen"].classes) == lower(main["stage_2_train"].classes)
    test_files = {v[0] for s in ("stage_2_test_seen", "stage_2_test_unseen") for v in main[s].videos}
    assert not test_files & {v[0] for v in union}, "test videos also used for training"


@pytest.mark.parametrize("name", BENCHMARKS)
def test_label_codes_match_csv(name):
    codes = label_codes(name)
    assert sorted(codes.values()) == list(range(ALL_CLASS_COUNT[name]))
    assert [c for c, _ in sorted(codes.items(), key=lambda kv: kv[1])] == sorted(all_classes(name))
    folder = {"ucf": "UCF", "activitynet": "ActivityNet", "vggsound": "VGGSound"}[name]
    # The csv's own label_code column agrees with our definition, through case-insensitive lookup.
    csv_file = resources.files("avzsl.data_manifests").joinpath(folder, "main_split", "stage_2_test_unseen.csv")
    with resources.as_file(csv_file) as path, path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows
    for row in rows:
        assert codes[row["label"]] == int(row["label_code"]), row


def test_case_insensitive_class_names():
    codes = label_codes("UCF")
    assert "HandstandPushups" in codes and "HandStandPushups" not in codes
    assert codes["HandStandPushups"] == codes["HandstandPushups"] == codes.lookup("handstandpushups")
    # The split files spell it HandStandPushups, all_class.txt and the phrase map HandstandPushups.
    split = benchmark_splits("ucf")["stage_1_train"]
    assert "HandStandPushups" in split.classes
    assert sum(label == "HandStandPushups" for _, label in split.videos) > 0
    assert codes[split.classes[split.classes.index("HandStandPushups")]] == codes["HandstandPushups"]
    assert class_phrases("ucf")["handstandpushups"] == class_phrases("ucf")["HandstandPushups"]
    with pytest.raises(KeyError, match="NoSuchClass"):
        codes["NoSuchClass"]


def test_dataset_names():
    assert dataset_key("UCF") == "ucf" and dataset_key("ActivityNet") == "activitynet"
    assert dataset_key("activity") == "activitynet" and dataset_key("VGGSound") == "vggsound"
    with pytest.raises(ValueError, match="unknown benchmark"):
        benchmark_splits("kinetics")
    with pytest.raises(ValueError, match="variant"):
        benchmark_splits("ucf", "other")


@pytest.mark.parametrize("name", BENCHMARKS)
def test_phrases_and_released_embeddings(name):
    phrases = class_phrases(name)
    assert set(phrases) == set(all_classes(name))
    assert phrases[sorted(all_classes(name))[0]]
    emb = released_text_embeddings(name)
    assert emb is not None
    assert set(emb) == set(phrases.values())
    vectors = np.stack(list(emb.values()))
    assert vectors.dtype == np.float32 and vectors.shape == (ALL_CLASS_COUNT[name], 300)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embedding_files_need_no_pickle():
    root = resources.files("avzsl.data_manifests").joinpath("text_embeddings")
    files = sorted(p.name for p in root.iterdir())
    assert not [f for f in files if f.endswith(".npy")], "pickled .npy must not be shipped"
    with resources.as_file(root.joinpath("ucf.npz")) as path, np.load(path, allow_pickle=False) as data:
        assert data["names"].dtype.kind == "U" and data["vectors"].dtype == np.float32
        assert list(data["names"]) == sorted(data["names"])
        assert "Apply Eye Makeup" in set(data["names"])
