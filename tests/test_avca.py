"""AVCA feature layout import/export (pipeline/interop/avca/__init__.py) on tiny real HDF5 folders."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from avzsl.data_manifests import benchmark_splits, class_phrases, released_text_embeddings
from avzsl.pipeline.cache import load_features, read_cache_info, read_class_table
from avzsl.pipeline.cli.export_features import main as export_main
from avzsl.pipeline.cli.import_features import main as import_main
from avzsl.pipeline.data.splits import STAGE_SPLITS, load_splits
from avzsl.pipeline.interop.avca import AvcaError, export_avca, import_avca, map_class_embeddings

DIM = 8
# Class -> embedded phrase. Sorting by phrase ("Weight Lifting" after "Diving") differs from sorting by class
# name ("CleanAndJerk" before "Diving"), so the reference order hands two classes the wrong embedding.
PHRASES = {"Archery": "Archery", "CleanAndJerk": "Weight Lifting", "Diving": "Diving", "YoYo": "Yo Yo"}
# stage split -> class -> video names; stage_2_train repeats the three stage-1 splits, as in the benchmarks.
S1_TRAIN = {"Archery": ["v_Archery_g01_c01", "v_Archery_g01_c02"], "CleanAndJerk": ["v_CleanAndJerk_g01_c01"]}
S1_VAL_SEEN = {"Archery": ["v_Archery_g02_c01"], "CleanAndJerk": ["v_CleanAndJerk_g02_c01"]}
S1_VAL_UNSEEN = {"Diving": ["v_Diving_g01_c01", "v_Diving_g01_c02"]}
LAYOUT = {
    "stage_1_train": S1_TRAIN,
    "stage_1_val_seen": S1_VAL_SEEN,
    "stage_1_val_unseen": S1_VAL_UNSEEN,
    "stage_2_train": {
        "Archery": S1_TRAIN["Archery"] + S1_VAL_SEEN["Archery"],
        "CleanAndJerk": S1_TRAIN["CleanAndJerk"] + S1_VAL_SEEN["CleanAndJerk"],
        "Diving": S1_VAL_UNSEEN["Diving"],
    },
    "stage_2_test_seen": {c: [f"v_{c}_g09_c01"] for c in ("Archery", "CleanAndJerk", "Diving")},
    "stage_2_test_unseen": {"YoYo": ["v_YoYo_g01_c01", "v_YoYo_g01_c02"]},
}


def _write_class_file(path: Path, data: np.ndarray, urls: list[str], vlen: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("data", data=data.astype(np.float32))
        if vlen:  # as the AVCA splitting scripts wrote them
            f.create_dataset("video_urls", data=[u.encode("ascii") for u in urls], dtype=h5py.string_dtype())
        else:  # as the AVCA README documents them
            f.create_dataset("video_urls", data=np.array([u.encode() for u in urls], dtype="S80"), dtype="S80")


def make_avca(root: Path, seed: int = 0) -> dict[str, tuple[str, np.ndarray, np.ndarray]]:
    """Write the tiny layout; returns ``{video: (class, audio (DIM,), visual (DIM,))}``."""
    rng = np.random.default_rng(seed)
    truth: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}
    for stage, classes in LAYOUT.items():
        for k, (cls, urls) in enumerate(classes.items()):
            for u in urls:
                truth.setdefault(u, (cls, rng.standard_normal(DIM).astype(np.float32),
                                     rng.standard_normal(DIM).astype(np.float32)))
            for modality, column in (("audio", 1), ("video", 2)):
                data = np.stack([truth[u][column] for u in urls])
                path = root / "features" / "main_features" / modality / stage / f"{cls}.h5"
                _write_class_file(path, data, urls, vlen=bool(k % 2))
    text = {p: (v / np.linalg.norm(v)).astype(np.float32)
            for p, v in ((p, rng.standard_normal(300)) for p in PHRASES.values())}
    text_dir = root / "features" / "main_features" / "text"
    text_dir.mkdir(parents=True)
    np.save(text_dir / "word_embeddings_tiny_normed.npy", text)
    split_dir = root / "class-split"
    split_dir.mkdir()
    (split_dir / "all_class.txt").write_text("".join(f"{c}\n" for c in PHRASES))
    (split_dir / "tiny_w2v_class_names.csv").write_text(
        "original,manual\n" + "".join(f"{c},{p}\n" for c, p in PHRASES.items()))
    return truth


@pytest.fixture()
def avca_root(tmp_path):
    root = tmp_path / "TINY"
    return root, make_avca(root)


def _cache_state(cache: Path):
    table = load_features(cache)
    feats = {v: (c, table.audio[i].numpy(), table.visual[i].numpy())
             for i, (v, c) in enumerate(zip(table.video_ids, table.class_names, strict=True))}
    classes = read_class_table(cache)
    splits = load_splits(cache / "splits" / "avca")
    membership = {s: (splits[s].classes, splits[s].videos) for s in STAGE_SPLITS}
    return feats, classes, membership


def test_import_export_import_round_trip(avca_root, tmp_path):
    root, truth = avca_root
    report = import_avca(root, tmp_path / "c1", shard_size=4)
    assert report.num_videos == len(truth) == 12
    assert report.repeated_videos == 7  # every stage-1 video is listed again in stage_2_train
    assert report.stage_videos["stage_2_train"] == 7 and report.reassigned_classes == []
    feats, classes, membership = _cache_state(tmp_path / "c1")
    assert set(feats) == set(truth)
    for vid, (cls, audio, visual) in truth.items():
        assert feats[vid][0] == cls
        np.testing.assert_array_equal(feats[vid][1], audio)
        np.testing.assert_array_equal(feats[vid][2], visual)
    assert classes.names == sorted(PHRASES) and classes.phrases == [PHRASES[c] for c in sorted(PHRASES)]
    text = np.load(root / "features/main_features/text/word_embeddings_tiny_normed.npy", allow_pickle=True).item()
    np.testing.assert_array_equal(classes.embeddings, np.stack([text[PHRASES[c]] for c in sorted(PHRASES)]))
    for stage, by_class in LAYOUT.items():
        assert membership[stage][0] == tuple(sorted(by_class))
        assert set(membership[stage][1]) == {(u, c) for c, urls in by_class.items() for u in urls}
    info = read_cache_info(tmp_path / "c1")
    assert info["encoder"]["name"] == "selavi (imported from AVCA main_features)"
    assert info["weights"]["sha256"] == "unknown (imported)"
    assert info["avca_import"]["num_videos"] == 12 and info["avca_import"]["dataset"] is None
    assert len(list((tmp_path / "c1" / "shards").glob("shard-*.h5"))) == 3  # 12 videos, 4 per shard

    out = tmp_path / "exported"
    exported = export_avca(tmp_path / "c1", out)
    assert exported.stage_videos == report.stage_videos and exported.url_dtype == "S80" and not exported.missing
    assert exported.text_file.name == "word_embeddings_tiny_normed.npy"
    # Every exported class file carries the original rows, in the original order, with the reference dtype.
    for stage, by_class in LAYOUT.items():
        for cls, urls in by_class.items():
            for modality, column in (("audio", 1), ("video", 2)):
                with h5py.File(out / "features/main_features" / modality / stage / f"{cls}.h5", "r") as f:
                    assert f["video_urls"].dtype == np.dtype("S80") and f["data"].dtype == np.float32
                    assert [u.decode() for u in f["video_urls"][...]] == urls
                    np.testing.assert_array_equal(f["data"][...], np.stack([truth[u][column] for u in urls]))

    # The export writes class-split/ (class list, name map named after the text file, split lists).
    assert (out / "class-split/all_class.txt").read_text().split() == sorted(PHRASES)
    assert (out / "class-split/tiny_w2v_class_names.csv").read_bytes() == (
        root / "class-split/tiny_w2v_class_names.csv").read_bytes()
    assert sorted(p.name for p in (out / "class-split/main_split").iterdir()) == sorted(
        f"{s}.{e}" for s in STAGE_SPLITS for e in ("txt", "csv"))
    import_avca(out, tmp_path / "c2")
    again = _cache_state(tmp_path / "c2")
    assert set(again[0]) == set(feats)
    for vid, (cls, audio, visual) in feats.items():
        assert again[0][vid][0] == cls
        np.testing.assert_array_equal(again[0][vid][1], audio)
        np.testing.assert_array_equal(again[0][vid][2], visual)
    assert again[1].names == classes.names and again[1].phrases == classes.phrases
    np.testing.assert_array_equal(again[1].embeddings, classes.embeddings)
    assert again[2] == membership


def test_reference_order_on_tiny_layout(avca_root, tmp_path):
    root, _ = avca_root
    report = import_avca(root, tmp_path / "ref", embedding_order="reference")
    assert report.reassigned_classes == ["CleanAndJerk", "Diving"]
    table = read_class_table(tmp_path / "ref")
    assert dict(zip(table.names, table.phrases, strict=True)) == {
        "Archery": "Archery", "CleanAndJerk": "Diving", "Diving": "Weight Lifting", "YoYo": "Yo Yo"}
    assert read_cache_info(tmp_path / "ref")["avca_import"]["reassigned_classes"] == ["CleanAndJerk", "Diving"]


@pytest.mark.parametrize(("name", "reassigned", "total"), [("ucf", 5, 9), ("activitynet", 1, 50), ("vggsound", 42, 69)])
def test_reference_order_counts_on_released_embeddings(name, reassigned, total):
    """avgzsl_conventions section 3: test-unseen classes that get another class's embedding in the reference."""
    text = released_text_embeddings(name)
    unseen = list(benchmark_splits(name)["stage_2_test_unseen"].classes)
    assert len(unseen) == total
    phrases, emb, wrong = map_class_embeddings(unseen, text, name, "reference")
    assert len(wrong) == reassigned
    good_phrases, good_emb, none = map_class_embeddings(unseen, text, name, "by_name")
    assert none == [] and good_phrases == [class_phrases(name)[c] for c in unseen]
    np.testing.assert_array_equal(good_emb, np.stack([text[p] for p in good_phrases]))
    differs = [c for c, a, b in zip(unseen, emb, good_emb, strict=True) if not np.array_equal(a, b)]
    assert differs == wrong


def _rewrite(path: Path, urls: list[str] | None = None, data: np.ndarray | None = None) -> None:
    with h5py.File(path, "r") as f:
        old_data, old_urls = f["data"][...], [u.decode() for u in f["video_urls"][...]]
    path.unlink()
    _write_class_file(path, old_data if data is None else data, old_urls if urls is None else urls, vlen=False)


def test_misaligned_audio_video_names_both_files(avca_root, tmp_path):
    root, _ = avca_root
    video = root / "features/main_features/video/stage_1_train/Archery.h5"
    _rewrite(video, urls=list(reversed(S1_TRAIN["Archery"])))
    with pytest.raises(AvcaError, match="not row-aligned") as err:
        import_avca(root, tmp_path / "c")
    assert str(root / "features/main_features/audio/stage_1_train/Archery.h5") in str(err.value)
    assert str(video) in str(err.value)
    assert not (tmp_path / "c").exists(), "nothing is written before the input is validated"


def test_missing_video_file(avca_root, tmp_path):
    root, _ = avca_root
    (root / "features/main_features/video/stage_2_test_unseen/YoYo.h5").unlink()
    with pytest.raises(AvcaError, match="audio features without a video file") as err:
        import_avca(root, tmp_path / "c")
    assert "audio/stage_2_test_unseen/YoYo.h5" in str(err.value)
    assert "video/stage_2_test_unseen/YoYo.h5" in str(err.value)


def test_repeated_video_with_other_features_is_an_error(avca_root, tmp_path):
    root, _ = avca_root
    path = root / "features/main_features/audio/stage_2_train/Diving.h5"
    with h5py.File(path, "r") as f:
        data = f["data"][...]
    _rewrite(path, data=data + 0.5)
    with pytest.raises(AvcaError, match="different audio features") as err:
        import_avca(root, tmp_path / "c")
    assert "stage_1_val_unseen/Diving.h5" in str(err.value) and "stage_2_train/Diving.h5" in str(err.value)


def test_symlink_outside_root_refused(avca_root, tmp_path):
    root, _ = avca_root
    outside = tmp_path / "elsewhere.h5"
    target = root / "features/main_features/audio/stage_1_train/Archery.h5"
    outside.write_bytes(target.read_bytes())
    target.unlink()
    target.symlink_to(outside)
    with pytest.raises(AvcaError, match="outside the import root"):
        import_avca(root, tmp_path / "c")
    assert import_avca(root, tmp_path / "c", allow_outside=True).num_videos == 12


def test_by_name_without_a_name_map_reports_unmatched(avca_root, tmp_path):
    root, _ = avca_root
    (root / "class-split" / "tiny_w2v_class_names.csv").unlink()
    # Normalised names match Archery, Diving and YoYo, never CleanAndJerk -> "Weight Lifting".
    with pytest.raises(AvcaError, match=r"1 class\(es\): \['CleanAndJerk'\]"):
        import_avca(root, tmp_path / "c")


def test_clis(avca_root, tmp_path, capsys):
    root, _ = avca_root
    cache, out = tmp_path / "cache", tmp_path / "out"
    assert import_main(["avca", "--root", str(root), "--out", str(cache)]) == 0
    assert "imported 12 videos, 4 classes" in capsys.readouterr().out
    assert import_main(["avca", "--root", str(root), "--out", str(cache)]) == 2
    err = capsys.readouterr().err
    assert str(cache) in err and "--overwrite" in err and "Traceback" not in err
    assert import_main(["avca", "--root", str(root), "--out", str(cache), "--overwrite",
                        "--embedding-order", "reference"]) == 0
    assert "2 of 4 classes carry another class's embedding" in capsys.readouterr().out
    assert import_main(["avca", "--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")]) == 2
    assert "nowhere" in capsys.readouterr().err

    assert export_main(["avca", "--cache", str(cache), "--out", str(out), "--dataset", "ucf"]) == 0
    assert [p.name for p in (out / "features/main_features/text").iterdir()] == ["word_embeddings_ucf_normed.npy"]
    assert export_main(["avca", "--cache", str(cache), "--out", str(out)]) == 2
    assert str(out) in capsys.readouterr().err
    assert export_main(["avca", "--cache", str(cache), "--out", str(out), "--overwrite",
                        "--splits", str(cache / "splits" / "avca")]) == 0
    with pytest.raises(SystemExit) as help_exit:
        import_main(["avca", "--help"])
    assert help_exit.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())  # the help is wrapped at the terminal width
    assert "is read with a restricted unpickler" in help_text and "allow_pickle=True" not in help_text
