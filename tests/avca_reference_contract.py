"""A reader of an AVCA dataset folder that follows the reference loader's file contract step by step.

Written here (not copied) from ExplainableML/AVCA-GZSL ``src/dataset.py`` (``UCFDataset``, ``ActivityNetDataset``,
``VGGSoundDataset``: ``get_data_by_modality``, ``read_dataset``, ``all_data``, ``classes``) and ``src/utils.py``
(``read_features``, ``get_class_names``): the same paths and file names, the same sorting and class ids, the same
``str(u, "utf-8")`` url decoding, ``torch.FloatTensor`` of the rows, and the same indexing of the phrase-sorted text
table by class id. The one deliberate difference: the embedding dict is unpickled with avzsl's restricted
unpickler instead of ``np.load(allow_pickle=True)`` (same objects, no code execution).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from avzsl.pipeline.core.safe_pickle import load_npy

# dataset name (the reference's --dataset_name) -> (text file, name map, class keys lower-cased?)
DATASETS = {
    "UCF": ("word_embeddings_ucf_normed.npy", "ucf_w2v_class_names.csv", True),
    "ActivityNet": ("word_embeddings_activity_normed.npy", "activitynet_w2v_class_names.csv", True),
    "VGGSound": ("word_embeddings_vggsound_normed.npy", "vggsound_w2v_class_names.csv", False),
}
# dataset_split -> stage splits read for audio/video (get_data_by_modality)
SPLIT_NAMES = {
    "train": ("stage_1_train",),
    "val": ("stage_1_val_seen", "stage_1_val_unseen"),
    "train_val": ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen"),
    "test": ("stage_2_test_seen", "stage_2_test_unseen"),
}


def get_class_names(path: Path) -> list[str]:
    with path.open("r") as f:
        return sorted(line.strip() for line in f)


@dataclass
class ReferenceView:
    audio: torch.Tensor  # (N, D_A) float32, rows of every class file of the split's stage folders
    video: torch.Tensor  # (N, D_V)
    target: torch.Tensor  # (N,) int64 class ids
    url: np.ndarray  # (N,) str
    text: torch.Tensor  # (K, D_W) the phrase-sorted table
    text_target: list[int]  # class id of each text row
    classes: np.ndarray  # sorted class ids of seen + unseen of the split
    class_to_idx: dict[str, int]

    def all_data_text(self) -> torch.Tensor:
        """``all_data["text"]``: the table indexed by the sorted class ids (IndexError when it is too short)."""
        return self.text[sorted(self.classes)]


def read_text(root: Path, method: str, dataset_name: str, class_to_idx: dict[str, int]) -> tuple[torch.Tensor,
                                                                                                 list[int]]:
    text_file, map_file, lower = DATASETS[dataset_name]
    key = str.lower if lower else str
    raw = load_npy((root / "features" / method / "text" / text_file).resolve()).item()
    raw_sorted = dict(sorted(raw.items()))
    with (root / "class-split" / map_file).open(newline="") as f:
        mapping = {row["manual"]: row["original"] for row in csv.DictReader(f)}  # text_label_mapping
    target = [class_to_idx[key(mapping[k])] for k in raw_sorted]
    return torch.FloatTensor(np.array(list(raw_sorted.values()))), target


def read_reference(root: Path, dataset_name: str, dataset_split: str, method: str = "main_features",
                   zero_shot_split: str = "main_split") -> ReferenceView:
    """What the reference loader holds after ``__init__`` for one ``dataset_split``."""
    _, _, lower = DATASETS[dataset_name]
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
        data, target, url = [], [], []
        for split_name in SPLIT_NAMES[dataset_split]:
            for file in (root / "features" / method / modality / split_name).resolve().iterdir():
                with h5py.File(file, "r") as hf:
                    rows = hf["data"][...]
                    names = [str(u, "utf-8") for u in list(hf["video_urls"])]
                for i, d in enumerate(rows):
                    data.append(d)
                    target.append(class_to_idx[key(file.stem)])
                    url.append(names[i])
        result[modality] = (torch.FloatTensor(np.array(data)), torch.LongTensor(target), np.array(url))
    assert torch.equal(result["audio"][1], result["video"][1])
    assert np.array_equal(result["audio"][2], result["video"][2])
    text, text_target = read_text(root, method, dataset_name, class_to_idx)
    mask = np.where(np.isin(result["audio"][1], classes))[0]  # all_data's classes_mask
    return ReferenceView(result["audio"][0][mask], result["video"][0][mask], result["audio"][1][mask],
                         result["audio"][2][mask], text, text_target, classes, class_to_idx)
