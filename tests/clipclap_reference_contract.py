"""A reader of a ClipClap-GZSL dataset folder that follows its loader's file contract step by step.

Written here (not copied) from dkurzend/ClipClap-GZSL ``src/dataset.py`` (``UCFDataset``, ``ActivityNetDataset``,
``VGGSoundDataset``: ``get_data_by_modality``, ``read_dataset``, ``all_data``, ``classes``, ``class_to_idx``,
``text_label_mapping``) and ``src/utils.py`` (``read_features``, ``get_class_names``), run with
``--use_wavcaps_embeddings True``: the same paths and file names, every entry of a stage folder read, the class
from the file stem, the same sorting and class ids, ``str(u)`` of the stored video names, the two text dicts
sorted by key and concatenated position by position, and the text table indexed by class id. The one deliberate
difference: pickles are read with avzsl's restricted unpickler instead of ``pickle.load`` / ``np.load(
allow_pickle=True)`` (same objects, no code execution).

``custom`` is not a ClipClap dataset class: it stands for one a user would add for a non-benchmark export, an
``ActivityNetDataset`` with ``custom`` in its file names.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avzsl.pipeline.core.safe_pickle import load_npy, restricted_load_file

# dataset name -> (<ds> in the text file names, name map, its key column, class_to_idx keys lower-cased?)
DATASETS = {
    "UCF": ("ucf", "ucf_clip_class_names.csv", "clip_class_name", True),
    "ActivityNet": ("activitynet", "activitynet_w2v_class_names.csv", "manual", True),
    "VGGSound": ("vggsound", "vggsound_w2v_class_names.csv", "manual", False),
    "custom": ("custom", "custom_w2v_class_names.csv", "manual", True),
}
SPLIT_NAMES = {  # dataset_type -> stage folders read for audio/video (get_data_by_modality)
    "train": ("stage_1_train",),
    "val": ("stage_1_val_seen", "stage_1_val_unseen"),
    "train_val": ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen"),
    "test": ("stage_2_test_seen", "stage_2_test_unseen"),
}


def get_class_names(path: Path) -> list[str]:
    with path.open("r") as f:
        return sorted(line.strip() for line in f)


def read_features(path: Path) -> tuple[list, list[str], list]:
    x = restricted_load_file(path)
    return x["features"], [str(u) for u in list(x["video_names"])], x["fps"]


@dataclass
class ClipClapView:
    """``all_data`` of the loader for one dataset split, plus what it was built from."""

    audio: np.ndarray  # (N, D_A)
    video: np.ndarray  # (N, D_V)
    target: np.ndarray  # (N,) class ids
    url: np.ndarray  # (N,) str, "b'<name>'"
    fps: np.ndarray  # (N,)
    text_table: np.ndarray  # (K, D_clip + D_wavcaps): the key-sorted, concatenated table
    text: np.ndarray  # all_data["text"]: text_table[sorted(classes)]
    text_target: list[int]  # class id of each text_table row (text_label_mapping)
    classes: np.ndarray  # sorted class ids of seen + unseen
    class_to_idx: dict[str, int]


def read_text(root: Path, method: str, dataset_name: str, class_to_idx: dict[str, int]) -> tuple[np.ndarray,
                                                                                                 list[int]]:
    ds, map_file, column, lower = DATASETS[dataset_name]
    text_dir = root / "features" / method / "text"
    clip = dict(sorted(load_npy((text_dir / f"word_embeddings_{ds}_normed.npy").resolve()).item().items()))
    wavcaps = dict(sorted(load_npy((text_dir / f"wavcaps_word_embeddings_{ds}_normed.npy").resolve()).item().items()))
    clip_list, wavcaps_list = list(clip.values()), list(wavcaps.values())
    data = [np.concatenate((clip_list[i], wavcaps_list[i]), axis=0) for i in range(len(clip_list))]
    with (root / "class-split" / map_file).open(newline="") as f:
        mapping = {row[column]: row["original"] for row in csv.DictReader(f)}  # text_label_mapping
    # The loader lower-cases here for every dataset (its VGGSound names are lower-case already).
    target = [class_to_idx[mapping[k].lower()] for k in clip]
    return np.array(data), target


def read_clipclap(root: Path, dataset_name: str, dataset_split: str, method: str = "cls_features_non_averaged",
                  zero_shot_split: str = "cls_split") -> ClipClapView:
    """What the loader holds in ``all_data`` after ``__init__`` for one ``dataset_split``."""
    _, _, _, lower = DATASETS[dataset_name]
    key = str.lower if lower else str
    split_dir = root / "class-split" / zero_shot_split
    class_to_idx = {key(c): i for i, c in enumerate(sorted(get_class_names(root / "class-split/all_class.txt")))}

    def ids(stage: str) -> list[int]:
        return [class_to_idx[key(n)] for n in get_class_names(split_dir / f"{stage}.txt")]

    seen, unseen = {
        "train": (ids("stage_1_train"), []),
        "val": (ids("stage_1_val_seen"), ids("stage_1_val_unseen")),
        "train_val": (ids("stage_1_train") + ids("stage_1_val_unseen"), []),
        "test": (ids("stage_2_test_seen"), ids("stage_2_test_unseen")),
    }[dataset_split]
    classes = np.sort(np.concatenate((np.asarray(seen, dtype=np.int64), np.asarray(unseen, dtype=np.int64))))

    result = {}
    for modality in ("audio", "video"):
        data, target, url, fps = [], [], [], []
        for split_name in SPLIT_NAMES[dataset_split]:
            for file in (root / "features" / method / modality / split_name).resolve().iterdir():
                rows, names, rates = read_features(file)
                for i, d in enumerate(rows):
                    data.append(d)
                    target.append(class_to_idx[key(file.stem)])
                    url.append(names[i])
                    fps.append(rates[i])
        result[modality] = (data, torch.LongTensor(target), np.array(url), fps)
    assert torch.equal(result["audio"][1], result["video"][1])
    assert np.array_equal(result["audio"][2], result["video"][2])
    text_table, text_target = read_text(root, method, dataset_name, class_to_idx)
    targets = result["audio"][1]
    mask = np.where(np.isin(targets, classes))[0]  # all_data's classes_mask
    return ClipClapView(
        audio=np.array(result["audio"][0])[mask], video=np.array(result["video"][0])[mask],
        target=targets.numpy()[mask], url=np.array(result["audio"][2])[mask],
        fps=np.array(result["audio"][3])[mask], text_table=text_table,
        text=np.array(text_table)[sorted(classes.astype(int))], text_target=text_target, classes=classes,
        class_to_idx=class_to_idx,
    )
