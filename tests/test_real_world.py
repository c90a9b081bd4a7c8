"""The real-media demo world (issues 11, 19): shipped media with attributions, test media held out from training,
real clips, packaged-encoder features."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pytest

from avzsl.extractors.decode.probe import probe_video
from avzsl.pipeline.cli import extract as cli_extract
from avzsl.pipeline.synth.real_catalogue import CATALOGUE, media_files
from avzsl.pipeline.synth.real_media import (
    CLIP_SECONDS,
    attributions,
    generate_real_videos,
    held_out_videos,
    load_recording,
    media_dir,
    real_classes,
    validation_videos,
)

REPO = Path(__file__).resolve().parent.parent
PACKAGES = {"tuxpaint-stamps-default", "pysiogame", "0ad-data"}


def max_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Peak of the normalised cross-correlation of two recordings over all lags (1.0: one contains the other)."""
    n = a.size + b.size - 1
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    return float(np.abs(corr).max() / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def test_every_catalogue_file_is_attributed_with_its_hash_and_licence() -> None:
    groups = real_classes()
    assert len(groups.all) == len(set(groups.all)) == len(CATALOGUE)
    assert not set(groups.seen) & set(groups.val_unseen) and not set(groups.test_unseen) & set(groups.seen)
    rows = {row["file"]: row for row in attributions()}
    for name in media_files():
        row = rows[name]
        assert hashlib.sha256((media_dir() / name).read_bytes()).hexdigest() == row["sha256"], name
        assert row["licence"] and row["copyright"] and row["source"].split()[0] in PACKAGES, name
    assert {row["source"].split()[0] for row in rows.values()} == PACKAGES  # three packages, no gcompris
    assert all((media_dir() / row["file"]).is_file() for row in rows.values())
    for notice in ("COPYING.GPL-2", "debian-copyright.txt", "more-copyright.txt"):
        assert (media_dir() / notice).is_file()


def test_build_script_covers_every_catalogue_file() -> None:
    spec = importlib.util.spec_from_file_location("build_demo_media", REPO / "scripts" / "build_demo_media.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = ({f"{n}.png" for n in module.TUX_CLASSES} | {f"{n}.ogg" for n in module.TUX_CLASSES}
             | {f"{n}.png" for n in module.ART_PICTURES} | {f"{n}.ogg" for n in module.OAD_RECORDINGS})
    assert set(media_files()) <= built
    assert {row["file"] for row in attributions()} == built


def test_trained_classes_hold_out_a_picture_and_a_recording_they_never_train_on() -> None:
    """Every seen and validation-unseen class has a held-out pair sharing no file with its other pairs, and no
    held-out recording is a copy of a recording any class trains on (peak normalised cross-correlation)."""
    groups = real_classes()
    trained = groups.seen + groups.val_unseen
    trained_recordings = {p.recording for c in trained for p in CATALOGUE[c].train + CATALOGUE[c].validation}
    waves = {stem: load_recording(stem) for stem in trained_recordings}
    for cls in trained:
        media = CATALOGUE[cls]
        assert media.held_out, cls
        others = media.train + media.validation
        for pair in media.held_out:
            assert pair.picture not in {p.picture for p in others}, cls
            assert pair.recording not in {p.recording for p in others}, cls
            held = load_recording(pair.recording)
            for stem, wave in waves.items():
                assert max_correlation(held, wave) < 0.5, (cls, pair.recording, stem)
    for cls in groups.test_unseen:
        assert not CATALOGUE[cls].held_out and not CATALOGUE[cls].validation, cls


def test_clips_are_real_videos_and_resumable(tmp_path: Path) -> None:
    videos = generate_real_videos(tmp_path, 2, classes=["dog", "violin"])
    assert videos == {"dog": ["dog/00.mp4", "dog/01.mp4", "dog/val-00.mp4", "dog/heldout-00.mp4"],
                      "violin": ["violin/00.mp4", "violin/01.mp4"]}
    assert held_out_videos(videos) == {"dog": ["dog/heldout-00.mp4"]}
    assert validation_videos(videos) == {"dog": ["dog/val-00.mp4"]}
    probe = probe_video(tmp_path / "dog" / "00.mp4")
    assert probe.has_video and probe.has_audio
    assert abs(probe.duration_s - CLIP_SECONDS) < 0.1
    before = (tmp_path / "dog" / "00.mp4").stat().st_mtime_ns
    generate_real_videos(tmp_path, 2, classes=["dog"])
    assert (tmp_path / "dog" / "00.mp4").stat().st_mtime_ns == before  # kept, not rewritten
    with pytest.raises(ValueError, match="no demo media for class 'unicorn'"):
        generate_real_videos(tmp_path, 1, classes=["unicorn"])


def test_demo_split_tests_trained_classes_only_on_held_out_media(tmp_path: Path) -> None:
    """The split folder the demo writes: test clips of trained classes are exactly their held-out clips, stage-1
    validation clips of seen classes their validation-pair clips, and no training list holds a held-out clip."""
    from avzsl.pipeline.data.splits import load_splits, write_protocol_splits

    groups = real_classes()
    videos = {c: [f"{c}/{k:02d}.mp4" for k in range(4)] for c in groups.all}
    for c in groups.seen + groups.val_unseen:
        videos[c] += [f"{c}/heldout-00.mp4", f"{c}/heldout-01.mp4"]
        if CATALOGUE[c].validation:
            videos[c] += [f"{c}/val-00.mp4"]
    write_protocol_splits(tmp_path, videos, groups.seen, groups.val_unseen, groups.test_unseen,
                          held_out=held_out_videos(videos), validation=validation_videos(videos))
    splits = load_splits(tmp_path)
    listed = {part: [v for v, _ in stage.videos_of_listed_classes()] for part, stage in splits.stages.items()}
    test_seen = set(listed["stage_2_test_seen"])
    assert test_seen == {v for ids in held_out_videos(videos).values() for v in ids}
    for part in ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen", "stage_2_train"):
        assert not test_seen & set(listed[part]), part
    for cls, ids in validation_videos(videos).items():
        assert {v for v in listed["stage_1_val_seen"] if v.startswith(f"{cls}/")} == set(ids), cls
    assert not any("/val-" in v for v in listed["stage_1_train"])


def test_packaged_extraction_gives_class_structured_features(tmp_path: Path) -> None:
    """avzsl-extract with the packaged encoders (no checkpoint option) on real clips: same-class clips are closer."""
    generate_real_videos(tmp_path / "videos", 2, classes=["cow", "violin"], held_out_clips=0)
    code = cli_extract.main(["--videos", str(tmp_path / "videos"), "--out", str(tmp_path / "cache"),
                             "--encoder", "effnet_lite0_aisfx"])
    assert code == 0
    with h5py.File(tmp_path / "cache" / "index.h5") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f["class_name"][()]]
        visual, audio = f["visual_mean"][()], f["audio_mean"][()]
    assert visual.shape == (4, 1280) and audio.shape == (4, 512)
    for features in (visual, audio):
        unit = features / np.linalg.norm(features, axis=1, keepdims=True)
        sim = unit @ unit.T
        same = [sim[i, j] for i in range(4) for j in range(i + 1, 4) if names[i] == names[j]]
        other = [sim[i, j] for i in range(4) for j in range(i + 1, 4) if names[i] != names[j]]
        assert min(same) > max(other)
    with (tmp_path / "cache" / "manifest.csv").open(newline="") as f:
        assert {row["class_name"] for row in csv.DictReader(f)} == {"cow", "violin"}


def test_checkpoint_option_with_packaged_encoder_is_a_usage_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "videos").mkdir()
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    code = cli_extract.main(["--videos", str(tmp_path / "videos"), "--out", str(tmp_path / "cache"),
                             "--encoder", "effnet_lite0_aisfx", "--selavi-checkpoint", str(weights)])
    assert code == 2
    assert "installed packages" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_predict_needs_no_weight_option_for_packaged_runs() -> None:
    """A run on a packaged-encoder cache is repeated from the installed weights; weight options are refused."""
    import pytest

    from avzsl.extractors.encoders.registry import get_encoder_spec
    from avzsl.pipeline.predict.records import PredictError, encoder_request

    spec = get_encoder_spec("effnet_lite0_aisfx")
    info = {"encoder": {"name": spec.name, "spec_hash": spec.spec_hash()},
            "extraction": {"decoder": "pyav", "windows": "clean"}, "weights": {"sha256": "effnet:a;aisfx:b"}}
    request = encoder_request(info, None, False)
    assert request.name == spec.name and not request.random_weights
    with pytest.raises(PredictError, match="installed packages"):
        encoder_request(info, Path("selavi.pth"), False)
    with pytest.raises(PredictError, match="installed packages"):
        encoder_request(info, None, True)


def test_real_clips_end_to_end_extract_train_predict(tmp_path: Path, capsys) -> None:
    """Real pictures and sounds, packaged pretrained encoders, the default method, then zero-shot predict."""
    import json

    from avzsl.pipeline.cli import predict as cli_predict
    from avzsl.pipeline.cli import train as cli_train
    from avzsl.pipeline.data.splits import write_protocol_splits

    seen, val_unseen, test_unseen = ["dog", "cello", "cow"], ["bassoon"], ["violin", "goat"]
    videos = generate_real_videos(tmp_path / "videos", 4, classes=seen + val_unseen + test_unseen, held_out_clips=0)
    write_protocol_splits(tmp_path / "splits", videos, seen, val_unseen, test_unseen, val_fraction=0.25,
                          test_fraction=0.25)
    cache, run = tmp_path / "cache", tmp_path / "run"
    assert cli_extract.main(["--videos", str(tmp_path / "videos"), "--out", str(cache),
                             "--encoder", "effnet_lite0_aisfx"]) == 0
    assert cli_train.main(["--cache", str(cache), "--splits", str(tmp_path / "splits"), "--out", str(run),
                           "--epochs", "3", "--batch-size", "16", "--batches-per-epoch", "2"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert all(np.isfinite(metrics[k]) for k in ("S", "U", "H", "ZSL"))
    capsys.readouterr()
    clip = str(tmp_path / "videos" / "violin" / "00.mp4")
    assert cli_predict.main(["--run", str(run), "--classes", "violin,goat", "--json", clip]) == 0
    ranked = json.loads(capsys.readouterr().out)[clip]["predictions"]
    assert {r["class"] for r in ranked} == {"violin", "goat"} and not any(r["seen"] for r in ranked)


def test_demo_refuses_a_folder_of_the_other_world(tmp_path: Path, capsys) -> None:
    """Resuming the real demo into a procedural demo's folder would mix both worlds' videos: refused up front."""
    import pytest

    from avzsl.pipeline.cli import demo as cli_demo

    (tmp_path / "videos" / "red_bell").mkdir(parents=True)
    with pytest.raises(SystemExit) as exc:
        cli_demo.main(["--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "another demo world (red_bell" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == ["red_bell"]  # nothing generated
    with pytest.raises(SystemExit) as exc:
        cli_demo.main(["--out", str(tmp_path / "new"), "--videos-per-class", "3"])
    assert exc.value.code == 2 and "at least 4" in capsys.readouterr().err
