"""``avzsl-export clipclap`` / ``avzsl-import clipclap`` on a tiny clip_clap cache extracted from real videos.

The cache comes from ``avzsl-extract --encoder clip_clap`` with random-weight checkpoints in the official layouts
(``tests/foundation_fixtures.py``) on six decoded videos of three UCF classes (``CleanAndJerk``: its ClipClap text
key ``Clean And Jerk`` is not its w2v phrase ``Weight Lifting``). The export is read through
``tests/clipclap_reference_contract.py`` (ClipClap's loader, step by step) and imported back; features, labels,
classes and class embeddings must match bit for bit. Damaged folders are refused naming the file.
"""

from __future__ import annotations

import pickle
import shutil
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from avzsl.pipeline.cache import (
    ClassTable,
    VideoFeatures,
    load_features,
    read_cache_info,
    read_class_table,
    write_cache,
)
from avzsl.pipeline.cli import export_features as cli_export
from avzsl.pipeline.cli import extract as cli_extract
from avzsl.pipeline.cli import import_features as cli_import
from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.data.splits import STAGE_SPLITS, load_splits, write_split_folder
from avzsl.pipeline.interop.clipclap.exporter import export_clipclap
from avzsl.pipeline.interop.clipclap.importer import import_clipclap
from avzsl.pipeline.interop.clipclap.layout import ClipClapError, ForbiddenPickleError, read_class_pickle
from tests.clipclap_reference_contract import get_class_names, read_clipclap
from tests.foundation_fixtures import tiny_clap_checkpoint, tiny_clip_checkpoint
from tests.media import write_av
from tests.pickle_payloads import MakeMarker, assert_payload_is_live

METHOD = "cls_features_non_averaged"
# video -> (class, colour, tone, stage splits that list it)
VIDEOS = {
    "v_ApplyEyeMakeup_g01_c01": ("ApplyEyeMakeup", (250, 20, 20), 300, ("stage_1_train", "stage_2_train")),
    "v_ApplyEyeMakeup_g02_c01": ("ApplyEyeMakeup", (230, 40, 20), 330, ("stage_1_val_seen", "stage_2_train")),
    "v_ApplyEyeMakeup_g03_c01": ("ApplyEyeMakeup", (240, 30, 60), 360, ("stage_2_test_seen",)),
    "v_CleanAndJerk_g01_c01": ("CleanAndJerk", (20, 250, 20), 600, ("stage_1_val_unseen", "stage_2_train")),
    "v_CleanAndJerk_g02_c01": ("CleanAndJerk", (40, 230, 60), 650, ("stage_2_test_seen",)),
    "v_Basketball_g01_c01": ("Basketball", (20, 20, 250), 900, ("stage_2_test_unseen",)),
}
STAGE_CLASSES = {
    "stage_1_train": ["ApplyEyeMakeup"], "stage_1_val_seen": ["ApplyEyeMakeup"], "stage_1_val_unseen": ["CleanAndJerk"],
    "stage_2_train": ["ApplyEyeMakeup", "CleanAndJerk"], "stage_2_test_seen": ["ApplyEyeMakeup", "CleanAndJerk"],
    "stage_2_test_unseen": ["Basketball"],
}
DIM = 16  # the tiny towers embed to 16: audio, visual, CLIP text and CLAP text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clipclap_layout")
    videos = root / "videos"
    for name, (cls, color, tone, _) in VIDEOS.items():
        (videos / cls).mkdir(parents=True, exist_ok=True)
        write_av(videos / cls / f"{name}.mp4", size=(64, 48), color=color, freq_hz=tone, duration_s=1.2)
    cache = root / "cache"
    assert cli_extract.main([
        "--videos", str(videos), "--out", str(cache), "--encoder", "clip_clap",
        "--clip-checkpoint", str(tiny_clip_checkpoint(root / "clip")),
        "--clap-checkpoint", str(tiny_clap_checkpoint(root / "clap")), "--workers", "1", "--batch-size", "3",
        "--no-progress", "--text-templates", "ucf",
    ]) == 0
    membership = {s: [(n, c) for n, (c, _, _, stages) in VIDEOS.items() if s in stages] for s in STAGE_SPLITS}
    write_split_folder(root / "splits", STAGE_CLASSES, membership)
    return {"root": root, "cache": cache, "splits": root / "splits"}


@pytest.fixture(scope="module")
def ucf_export(world: dict[str, Path]) -> Path:
    out = world["root"] / "UCF"
    report = export_clipclap(world["cache"], out, splits_dir=world["splits"], dataset="ucf")
    assert report.stage_videos == {s: sum(s in v[3] for v in VIDEOS.values()) for s in STAGE_SPLITS}
    assert not report.missing and report.text_classes == 101 and len(report.filled_zero) == 98
    return out


def _cache_rows(cache: Path) -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    """``{split filename (file stem): (class, audio, visual)}`` of a cache."""
    table = load_features(cache)
    return {Path(v).stem: (c, a, w) for v, c, a, w in zip(table.video_ids, table.class_names, table.audio.numpy(),
                                                         table.visual.numpy(), strict=True)}


@pytest.mark.parametrize("dataset_split", ["train_val", "test"])
def test_ucf_export_reads_through_the_loader_contract_exactly(world, ucf_export, dataset_split):
    view = read_clipclap(ucf_export, "UCF", dataset_split)
    rows = _cache_rows(world["cache"])
    stages = {"train_val": ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen"),
              "test": ("stage_2_test_seen", "stage_2_test_unseen")}[dataset_split]
    expected = sorted(n for n, v in VIDEOS.items() if set(v[3]) & set(stages))
    # the loader's urls are str() of the stored bytes
    assert sorted(view.url.tolist()) == [f"b'{n}'" for n in expected]
    names = [u[2:-1] for u in view.url]
    assert view.audio.dtype == np.float32 and view.audio.shape == (len(names), DIM)
    assert np.array_equal(view.audio, np.stack([rows[n][1] for n in names]))  # 0 difference
    assert np.array_equal(view.video, np.stack([rows[n][2] for n in names]))
    ucf_ids = {c: i for i, c in enumerate(sorted(get_class_names(ucf_export / "class-split/all_class.txt")))}
    assert view.target.tolist() == [ucf_ids[rows[n][0]] for n in names]
    assert set(view.fps.tolist()) == {25}
    # Both dicts cover all 101 UCF classes, so the loader's class-id indexing works; [clip | wavcaps] per row.
    assert view.text_table.shape == (101, 2 * DIM) and view.text.shape == (len(view.classes), 2 * DIM)
    assert sorted(view.text_target) == list(range(101))


def test_ucf_text_dicts_use_clip_class_name_keys_and_the_table_columns(world, ucf_export):
    view = read_clipclap(ucf_export, "UCF", "test")
    table = read_class_table(world["cache"])
    own = dict(zip(table.names, table.embeddings, strict=True))
    by_id = {i: c for c, i in view.class_to_idx.items()}
    # text_target[k] is the class id the loader attaches to row k (through ucf_clip_class_names.csv)
    for row, class_id in enumerate(view.text_target):
        name = next((n for n in own if n.lower() == by_id[class_id]), None)
        expected = own[name] if name else np.zeros(2 * DIM, np.float32)
        np.testing.assert_array_equal(view.text_table[row], expected)
    data = resources.files("avzsl.data_manifests")
    for name in ("all_class.txt", "ucf_clip_class_names.csv"):
        assert (ucf_export / "class-split" / name).read_bytes() == data.joinpath("UCF", name).read_bytes()
    for stage in STAGE_SPLITS:
        assert (ucf_export / "class-split/cls_split" / f"{stage}.txt").read_text().split() == STAGE_CLASSES[stage]


def test_by_class_id_gives_every_used_class_its_own_row(world, tmp_path):
    out = tmp_path / "UCF"
    assert cli_export.main(["clipclap", "--cache", str(world["cache"]), "--out", str(out), "--splits",
                            str(world["splits"]), "--dataset", "ucf", "--text-order", "by_class_id"]) == 0
    table = read_class_table(world["cache"])
    for dataset_split in ("train_val", "test"):
        view = read_clipclap(out, "UCF", dataset_split)
        by_id = {i: c for c, i in view.class_to_idx.items()}
        for k, class_id in enumerate(sorted(view.classes)):
            np.testing.assert_array_equal(view.text[k], table.lookup([by_id[class_id]])[0])


def test_ucf_import_round_trip_is_bit_exact(world, ucf_export, tmp_path):
    report = import_clipclap(ucf_export, tmp_path / "back", dataset="ucf")
    assert report.num_videos == len(VIDEOS) and report.repeated_videos == 3
    assert report.feature_dims == {"audio": DIM, "visual": DIM, "clip_text": DIM, "clap_text": DIM}
    back, rows = _cache_rows(tmp_path / "back"), _cache_rows(world["cache"])
    assert sorted(back) == sorted(rows)
    for name, (cls, audio, visual) in rows.items():
        assert back[name][0] == cls
        assert np.array_equal(back[name][1], audio) and np.array_equal(back[name][2], visual)
    original, imported = read_class_table(world["cache"]), read_class_table(tmp_path / "back")
    assert imported.names == original.names  # the cache's classes, not UCF's 101
    assert np.array_equal(imported.embeddings, original.embeddings)
    assert imported.phrases[imported.names.index("CleanAndJerk")] == "Clean And Jerk"  # clip_class_name key
    assert imported.provenance["segments"] == {"clip_text": [0, DIM], "clap_text": [DIM, 2 * DIM]}
    splits = load_splits(report.splits_dir)
    for stage in STAGE_SPLITS:
        assert list(splits[stage].classes) == STAGE_CLASSES[stage]
        assert sorted(f for f, _ in splits[stage].videos) == sorted(n for n, v in VIDEOS.items() if stage in v[3])
    info = read_cache_info(tmp_path / "back")
    assert info["clipclap_import"]["checked_against_class_split"] and info["clipclap_import"]["fps"] == [25]


def test_custom_export_reads_through_the_contract_and_imports_back_bit_exact(world, tmp_path):
    out = tmp_path / "custom"
    assert cli_export.main(["clipclap", "--cache", str(world["cache"]), "--out", str(out), "--splits",
                            str(world["splits"])]) == 0
    assert (out / f"features/{METHOD}/text/word_embeddings_custom_normed.npy").is_file()
    view = read_clipclap(out, "custom", "test")
    assert view.text_table.shape == (3, 2 * DIM)  # the cache's classes only
    rows = _cache_rows(world["cache"])
    names = [u[2:-1] for u in view.url]
    assert np.array_equal(view.audio, np.stack([rows[n][1] for n in names]))
    assert cli_import.main(["clipclap", "--root", str(out), "--out", str(tmp_path / "back")]) == 0
    back = _cache_rows(tmp_path / "back")
    assert {n: r[0] for n, r in back.items()} == {n: r[0] for n, r in rows.items()}
    assert all(np.array_equal(back[n][1], rows[n][1]) and np.array_equal(back[n][2], rows[n][2]) for n in rows)
    original, imported = read_class_table(world["cache"]), read_class_table(tmp_path / "back")
    assert imported.names == original.names and imported.phrases == original.phrases
    assert np.array_equal(imported.embeddings, original.embeddings)


def test_overwrite_removes_the_loaders_stale_parse(world, ucf_export, tmp_path):
    out = tmp_path / "UCF"
    shutil.copytree(ucf_export, out)
    stale = out / "_features_processed" / METHOD / "traininigcls_split.pkl"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"stale")
    with pytest.raises(UserError, match="not empty"):
        export_clipclap(world["cache"], out, splits_dir=world["splits"], dataset="ucf")
    export_clipclap(world["cache"], out, splits_dir=world["splits"], dataset="ucf", overwrite=True)
    assert not stale.parent.exists() and (out / "class-split/all_class.txt").is_file()


def test_export_needs_a_class_table_with_clip_and_clap_columns(tmp_path, world):
    cache = tmp_path / "w2v"
    table = ClassTable(["ApplyEyeMakeup"], ["apply eye makeup"], np.ones((1, 4), np.float32), {"embedder": "w2v"})
    write_cache(cache, [VideoFeatures("v_ApplyEyeMakeup_g01_c01", "ApplyEyeMakeup", np.ones(2), np.ones(2))],
                table, {"encoder": {"name": "test"}}, 10)
    with pytest.raises(ClipClapError, match=r"classes\.h5: the class table .* CLIP-text and CLAP-text"):
        export_clipclap(cache, tmp_path / "out", splits_dir=world["splits"])


# ------------------------------------------------------------------------------------------------ damaged folders


@pytest.fixture
def damaged(ucf_export: Path, tmp_path: Path) -> Path:
    out = tmp_path / "UCF"
    shutil.copytree(ucf_export, out)
    return out


def _features(root: Path, modality: str, stage: str, cls: str) -> Path:
    return root / "features" / METHOD / modality / stage / f"{cls}.pkl"


def _refused(root: Path, tmp_path: Path, capsys) -> str:
    capsys.readouterr()
    assert cli_import.main(["clipclap", "--root", str(root), "--out", str(tmp_path / "c"), "--dataset", "ucf"]) == 2
    assert not (tmp_path / "c" / "index.h5").exists()
    return capsys.readouterr().err


def test_missing_video_file_is_refused_naming_it(damaged, tmp_path, capsys):
    _features(damaged, "video", "stage_2_test_seen", "CleanAndJerk").unlink()
    err = _refused(damaged, tmp_path, capsys)
    assert str(_features(damaged, "audio", "stage_2_test_seen", "CleanAndJerk")) in err
    assert "audio features without a video file" in err


def test_misaligned_rows_are_refused_naming_both_files(damaged, tmp_path, capsys):
    path = _features(damaged, "video", "stage_2_train", "ApplyEyeMakeup")
    data, names, fps = read_class_pickle(path)
    path.write_bytes(pickle.dumps({"features": list(data[::-1]), "video_names": [n.encode() for n in names[::-1]],
                                   "fps": fps}))
    err = _refused(damaged, tmp_path, capsys)
    assert "not row-aligned: row 0" in err and str(path) in err
    assert str(_features(damaged, "audio", "stage_2_train", "ApplyEyeMakeup")) in err


def test_fewer_rows_than_names_is_refused_naming_the_file(damaged, tmp_path, capsys):
    # ClipClap's splitting script drops a video with empty features but keeps its name.
    path = _features(damaged, "audio", "stage_2_train", "ApplyEyeMakeup")
    data, names, fps = read_class_pickle(path)
    path.write_bytes(pickle.dumps({"features": list(data[1:]), "video_names": [n.encode() for n in names],
                                   "fps": fps[1:]}))
    err = _refused(damaged, tmp_path, capsys)
    assert f"{path}: 1 feature rows but 2 video names" in err


def test_missing_text_dict_and_stray_file_and_listed_class_without_file_are_named(damaged, tmp_path, capsys):
    text = damaged / f"features/{METHOD}/text/wavcaps_word_embeddings_ucf_normed.npy"
    text.rename(text.with_suffix(".bak"))
    assert f"{text}: text embedding file not found" in _refused(damaged, tmp_path, capsys)
    text.with_suffix(".bak").rename(text)
    stray = damaged / f"features/{METHOD}/audio/stage_1_train/.DS_Store"
    stray.write_bytes(b"")
    assert f"{stray}: not a <ClassName>.pkl file" in _refused(damaged, tmp_path, capsys)
    stray.unlink()
    listed = damaged / "class-split/cls_split/stage_2_test_unseen.txt"
    listed.write_text("Basketball\nTyping\n")
    err = _refused(damaged, tmp_path, capsys)
    assert f"{listed} lists 1 class(es) without a class file" in err and "['typing']" in err


def test_class_files_the_stage_list_omits_are_skipped_as_the_loader_does(damaged, tmp_path):
    # ClipClap's own cls_split release has such files (UCF stage_2_test_unseen: BandMarching, BrushingTeeth,
    # Typing); its loader reads them and drops their rows, so the import leaves them out of that stage.
    (damaged / "class-split/cls_split/stage_2_test_seen.txt").write_text("ApplyEyeMakeup\n")
    report = import_clipclap(damaged, tmp_path / "back", dataset="ucf")
    assert report.stage_videos["stage_2_test_seen"] == 1
    assert "v_CleanAndJerk_g02_c01" not in _cache_rows(tmp_path / "back")  # listed in no other stage
    record = read_cache_info(tmp_path / "back")["clipclap_import"]
    assert record["unlisted_class_files"] == {"stage_2_test_seen": ["CleanAndJerk"]}
    assert list(load_splits(report.splits_dir)["stage_2_test_seen"].classes) == ["ApplyEyeMakeup"]


def test_pickled_code_is_refused_and_never_runs(damaged, tmp_path):
    assert_payload_is_live(tmp_path)
    marker = tmp_path / "ran"
    path = _features(damaged, "audio", "stage_1_train", "ApplyEyeMakeup")
    path.write_bytes(pickle.dumps({"features": MakeMarker(marker), "video_names": [b"x"], "fps": [25]}))
    with pytest.raises(ForbiddenPickleError, match=str(path)):
        import_clipclap(damaged, tmp_path / "c", dataset="ucf")
    assert not marker.exists()


def test_float16_video_features_are_widened_exactly(damaged, tmp_path):
    # As ClipClap's scripts are written, CLIP runs in float16 on CUDA: its video features are float16 arrays.
    halves = {}
    for path in sorted((damaged / "features" / METHOD / "video").glob("*/*.pkl")):
        data, names, fps = read_class_pickle(path)
        rows = [row.astype(np.float16) for row in data]
        halves.update(zip(names, rows, strict=True))
        path.write_bytes(pickle.dumps({"features": rows, "video_names": [n.encode() for n in names], "fps": fps}))
    import_clipclap(damaged, tmp_path / "back", dataset="ucf")
    back = _cache_rows(tmp_path / "back")
    assert sorted(back) == sorted(halves)
    for name, half in halves.items():
        assert back[name][2].dtype == np.float32 and np.array_equal(back[name][2], half.astype(np.float32))


def test_reference_order_import_and_by_class_id_export_agree_on_ucf(world, ucf_export, tmp_path):
    # With ClipClap's UCF keys (clip_class_name) the sorted keys line up with the sorted class names for all 101
    # classes, so its loader's positional lookup mixes up no UCF class (ActivityNet: 8, VGGSound: 205; docs).
    out = tmp_path / "UCF"
    export_clipclap(world["cache"], out, splits_dir=world["splits"], dataset="ucf", text_order="by_class_id")
    text = f"features/{METHOD}/text/word_embeddings_ucf_normed.npy"
    assert (out / text).read_bytes() == (ucf_export / text).read_bytes()
    report = import_clipclap(out, tmp_path / "back", dataset="ucf", embedding_order="reference")
    assert report.reassigned_classes == []
    original, imported = read_class_table(world["cache"]), read_class_table(tmp_path / "back")
    assert np.array_equal(imported.embeddings, original.lookup(imported.names))
