"""The real-media demo world (issue 11): shipped media with attributions, real clips, packaged-encoder features."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
from pathlib import Path

import h5py
import numpy as np

from avzsl.extractors.decode.probe import probe_video
from avzsl.pipeline.cli import extract as cli_extract
from avzsl.pipeline.synth.real_media import (
    CLIP_SECONDS,
    attributions,
    generate_real_videos,
    media_dir,
    real_classes,
)

REPO = Path(__file__).resolve().parent.parent


def test_every_class_has_attributed_media() -> None:
    groups = real_classes()
    assert len(groups.all) == len(set(groups.all)) >= 20
    assert not set(groups.seen) & set(groups.val_unseen) and not set(groups.test_unseen) & set(groups.seen)
    rows = {row["file"]: row for row in attributions()}
    for name in groups.all:
        for ext in (".png", ".ogg"):
            row = rows.pop(f"{name}{ext}")
            data = (media_dir() / f"{name}{ext}").read_bytes()
            assert hashlib.sha256(data).hexdigest() == row["sha256"], name
            assert row["licence"] == "GPL-2.0-or-later" and "tuxpaint-stamps-default" in row["source"]
    assert not rows, f"attributed files without a class: {sorted(rows)}"
    assert (media_dir() / "COPYING.GPL-2").is_file() and (media_dir() / "debian-copyright.txt").is_file()


def test_build_script_lists_the_same_classes() -> None:
    spec = importlib.util.spec_from_file_location("build_demo_media", REPO / "scripts" / "build_demo_media.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert set(module.CLASSES) == set(real_classes().all)


def test_clips_are_real_videos_and_resumable(tmp_path: Path) -> None:
    videos = generate_real_videos(tmp_path, 2, classes=["dog", "violin"])
    assert videos == {"dog": ["dog/00.mp4", "dog/01.mp4"], "violin": ["violin/00.mp4", "violin/01.mp4"]}
    probe = probe_video(tmp_path / "dog" / "00.mp4")
    assert probe.has_video and probe.has_audio
    assert abs(probe.duration_s - CLIP_SECONDS) < 0.1
    before = (tmp_path / "dog" / "00.mp4").stat().st_mtime_ns
    generate_real_videos(tmp_path, 2, classes=["dog"])
    assert (tmp_path / "dog" / "00.mp4").stat().st_mtime_ns == before  # kept, not rewritten


def test_packaged_extraction_gives_class_structured_features(tmp_path: Path) -> None:
    """avzsl-extract with the packaged encoders (no checkpoint option) on real clips: same-class clips are closer."""
    generate_real_videos(tmp_path / "videos", 2, classes=["cow", "violin"])
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
    videos = generate_real_videos(tmp_path / "videos", 4, classes=seen + val_unseen + test_unseen)
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
