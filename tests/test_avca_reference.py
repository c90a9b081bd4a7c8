"""``avzsl-export avca`` on a benchmark-shaped cache, read back through the reference loader's file contract.

The cache holds every video of the real UCF-GZSL main split files (tiny random features) and the released
fastText class-name embeddings of its 51 classes. The export is read by ``tests/avca_reference_contract.py``
(the reference ``UCFDataset``'s paths, names, sorting, class ids and text indexing) and must give back the
cache's features, urls and class ids with 0 difference, and a text table covering all 101 UCF classes.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

from avzsl.data_manifests import benchmark_splits, class_phrases, label_codes, released_text_embeddings
from avzsl.pipeline.cache import ClassTable, VideoFeatures, read_class_table, write_cache
from avzsl.pipeline.cli.export_features import main as export_main
from avzsl.pipeline.data.splits import STAGE_SPLITS
from avzsl.pipeline.interop.avca import export_avca, import_avca
from avzsl.pipeline.interop.reference import reference_text
from tests.avca_reference_contract import get_class_names, read_reference, read_text

A_DIM, V_DIM = 3, 2  # different sizes, so a swapped modality cannot pass


def _ucf_cache(cache: Path) -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    """A cache of all UCF main-split videos; returns ``{video id: (class, audio, visual)}``."""
    splits = benchmark_splits("ucf")
    spelling = {c.lower(): c for s in STAGE_SPLITS for c in splits[s].classes}
    rng = np.random.default_rng(0)
    videos: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}
    for stage in STAGE_SPLITS:
        for filename, label in splits[stage].videos:
            if filename not in videos:
                videos[filename] = (spelling[label.lower()], rng.standard_normal(A_DIM).astype(np.float32),
                                    rng.standard_normal(V_DIM).astype(np.float32))
    names = sorted(spelling.values())
    phrases = class_phrases("ucf")
    released = released_text_embeddings("ucf")
    table = ClassTable(names, [phrases[n] for n in names], np.stack([released[phrases[n]] for n in names]),
                       {"embedder": "released"})
    features = [VideoFeatures(v, c, a, w) for v, (c, a, w) in videos.items()]
    write_cache(cache, features, table, {"encoder": {"name": "test"}}, 4000)
    return videos


@pytest.fixture(scope="module")
def ucf_export(tmp_path_factory):
    base = tmp_path_factory.mktemp("ucf_ref")
    videos = _ucf_cache(base / "cache")
    with resources.as_file(resources.files("avzsl.data_manifests").joinpath("UCF", "main_split")) as split_dir:
        report = export_avca(base / "cache", base / "UCF", splits_dir=Path(split_dir), dataset="ucf")
    return base, videos, report


# train_val and test read every stage folder the reference loader opens (it never reads stage_2_train).
@pytest.mark.parametrize("dataset_split", ["train_val", "test"])
def test_reference_contract_reads_the_cache_exactly(ucf_export, dataset_split):
    base, videos, report = ucf_export
    assert not report.missing and report.text_classes == 101 and not report.filled_zero
    view = read_reference(base / "UCF", "UCF", dataset_split)
    codes = label_codes("ucf")
    splits = benchmark_splits("ucf")
    stages = {"train": ["stage_1_train"], "val": ["stage_1_val_seen", "stage_1_val_unseen"],
              "train_val": ["stage_1_train", "stage_1_val_seen", "stage_1_val_unseen"],
              "test": ["stage_2_test_seen", "stage_2_test_unseen"]}[dataset_split]
    expected = sorted(f for s in stages for f, _ in splits[s].videos)
    assert sorted(view.url.tolist()) == expected  # every split video, each listing once
    audio = torch.from_numpy(np.stack([videos[u][1] for u in view.url]))
    visual = torch.from_numpy(np.stack([videos[u][2] for u in view.url]))
    assert view.audio.dtype == torch.float32 and view.audio.shape == (len(expected), A_DIM)
    assert torch.equal(view.audio, audio) and torch.equal(view.video, visual)  # 0 difference
    assert view.target.tolist() == [codes[videos[u][0]] for u in view.url]
    # The text table covers all 101 classes: the reference's class-id indexing works (51 entries raised
    # "IndexError: index 54 is out of bounds for dimension 0 with size 51").
    assert view.text.shape == (101, 300) and view.all_data_text().shape == (len(view.classes), 300)


def test_text_dict_equals_released_and_class_split_is_the_benchmarks(ucf_export):
    base, _, _ = ucf_export
    view = read_reference(base / "UCF", "UCF", "test")
    released = released_text_embeddings("ucf")
    assert torch.equal(view.text, torch.from_numpy(np.stack([released[k] for k in sorted(released)])))
    assert sorted(view.text_target) == list(range(101))
    data = resources.files("avzsl.data_manifests")
    for name in ("all_class.txt", "ucf_w2v_class_names.csv"):
        assert (base / "UCF/class-split" / name).read_bytes() == data.joinpath("UCF", name).read_bytes()
    for stage in STAGE_SPLITS:
        for ext in ("txt", "csv"):
            written = (base / "UCF/class-split/main_split" / f"{stage}.{ext}").read_bytes()
            assert written == data.joinpath("UCF", "main_split", f"{stage}.{ext}").read_bytes()


def _text_view(base: Path, root: Path, text: dict[str, np.ndarray]):
    """The contract reader's text table for ``text`` written into a copy of the export's text folder."""
    root.mkdir()
    (root / "class-split").symlink_to(base / "UCF/class-split")
    (root / "features/main_features/text").mkdir(parents=True)
    np.save(root / "features/main_features/text/word_embeddings_ucf_normed.npy", text)
    class_to_idx = {c.lower(): i for i, c in enumerate(sorted(get_class_names(root / "class-split/all_class.txt")))}
    table, _ = read_text(root, "main_features", "UCF", class_to_idx)
    return table, class_to_idx


def test_short_text_dict_fails_the_contract(ucf_export, tmp_path):
    """The contract reader catches the old export's fault (a dict of the cache's 51 classes only)."""
    base, _, _ = ucf_export
    table = read_class_table(base / "cache")
    text, _ = _text_view(base, tmp_path / "UCF", dict(zip(table.phrases, table.embeddings, strict=True)))
    test_ids = sorted(label_codes("ucf")[c] for s in ("stage_2_test_seen", "stage_2_test_unseen")
                      for c in benchmark_splits("ucf")[s].classes)
    with pytest.raises(IndexError):
        text[test_ids]


def test_by_class_id_text_gives_each_used_class_its_own_embedding(ucf_export, tmp_path):
    base, _, _ = ucf_export
    table = read_class_table(base / "cache")
    used = sorted({c for s in STAGE_SPLITS for c in benchmark_splits("ucf")[s].classes})
    own = dict(zip((n.lower() for n in table.names), table.embeddings, strict=True))
    fixed = reference_text(table, "ucf", "by_class_id", used)
    text, class_to_idx = _text_view(base, tmp_path / "fixed", fixed.text)
    for name in used:
        np.testing.assert_array_equal(text[class_to_idx[name.lower()]].numpy(), own[name.lower()])
    released = reference_text(table, "ucf", "by_phrase", used)
    text, _ = _text_view(base, tmp_path / "released", released.text)
    wrong = [n for n in used if not np.array_equal(text[class_to_idx[n.lower()]].numpy(), own[n.lower()])]
    assert 0 < len(wrong) < len(used)  # the reference's positional mix-up on the released order (36 of 51)


@pytest.mark.slow
def test_by_class_id_export_cli_and_reference_order_import(ucf_export, tmp_path):
    base, _, _ = ucf_export
    with resources.as_file(resources.files("avzsl.data_manifests").joinpath("UCF", "main_split")) as split_dir:
        assert export_main(["avca", "--cache", str(base / "cache"), "--out", str(tmp_path / "UCF"), "--splits",
                            str(split_dir), "--dataset", "ucf", "--text-order", "by_class_id"]) == 0
    table = read_class_table(base / "cache")
    own = dict(zip((n.lower() for n in table.names), table.embeddings, strict=True))
    for dataset_split in ("train_val", "test"):
        view = read_reference(tmp_path / "UCF", "UCF", dataset_split)
        by_id = {i: c for c, i in view.class_to_idx.items()}
        rows = view.all_data_text()
        for k, class_id in enumerate(sorted(view.classes)):
            np.testing.assert_array_equal(rows[k].numpy(), own[by_id[class_id]])
    # by_phrase (the released order) gives most test classes another class's vector in the reference loader.
    phrase_view = read_reference(base / "UCF", "UCF", "test")
    by_id = {i: c for c, i in phrase_view.class_to_idx.items()}
    wrong = [by_id[i] for k, i in enumerate(sorted(phrase_view.classes))
             if not np.array_equal(phrase_view.all_data_text()[k].numpy(), own[by_id[i]])]
    assert 0 < len(wrong) < len(phrase_view.classes)
    # The permuted file reads back with the reference order into the correct embeddings.
    import_avca(tmp_path / "UCF", tmp_path / "back", dataset="ucf", embedding_order="reference")
    back = read_class_table(tmp_path / "back")
    np.testing.assert_array_equal(back.lookup(table.names), table.embeddings)
