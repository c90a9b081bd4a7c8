"""avzsl-extract --encoder clip_clap on real decoded videos: tiny checkpoints in the official layouts, provenance,
text-tower class table, resume after SIGKILL, refusals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from avzsl.pipeline.cache import list_shards, load_features, read_cache_info, read_class_table, read_shard
from avzsl.pipeline.cli import extract as cli_extract
from tests.foundation_fixtures import tiny_clap_checkpoint, tiny_clip_checkpoint
from tests.media import write_av

VIDEOS = {
    "red_bell/a.mp4": dict(color=(250, 20, 20), freq_hz=300, duration_s=2.2),
    "red_bell/b.mp4": dict(color=(230, 30, 10), freq_hz=320, duration_s=1.2),
    "blue_drum/a.mp4": dict(color=(20, 20, 250), freq_hz=900, duration_s=1.2),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clipclap")
    videos = root / "videos"
    for rel, kw in VIDEOS.items():
        (videos / rel).parent.mkdir(parents=True, exist_ok=True)
        write_av(videos / rel, size=(64, 48), **kw)
    return {
        "videos": videos,
        "clip": tiny_clip_checkpoint(root / "clip"),
        "clap": tiny_clap_checkpoint(root / "clap"),
        "root": root,
    }


def _args(w: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return [
        "--videos", str(w["videos"]), "--out", str(out), "--encoder", "clip_clap",
        "--clip-checkpoint", str(w["clip"]), "--clap-checkpoint", str(w["clap"]), "--shard-size", "2",
        "--workers", "1", "--batch-size", "2", "--no-progress", "--text-templates", "ucf", *extra,
    ]


@pytest.fixture(scope="module")
def cache(world: dict[str, Path]) -> Path:
    out = world["root"] / "cache"
    assert cli_extract.main(_args(world, out)) == 0
    return out


def _rows(cache: Path) -> dict[str, tuple]:
    return {
        v.video_id: (v.audio_mean, v.visual_mean, v.audio_seq, v.visual_seq)
        for shard in list_shards(cache)
        for v in read_shard(shard, with_sequences=True)
    }


def test_features_provenance_and_text_tower_class_table(cache: Path) -> None:
    table = load_features(cache)
    assert sorted(table.video_ids) == sorted(VIDEOS)
    assert table.audio.shape == (3, 16) and table.visual.shape == (3, 16)  # the tiny towers embed to 16
    rows = _rows(cache)
    _, visual_mean, audio_seq, visual_seq = rows["red_bell/a.mp4"]
    assert audio_seq.shape == (2, 16) and visual_seq.shape == (2, 16)
    np.testing.assert_array_equal(visual_mean, visual_seq[1])  # the recipe's middle frame: middle window
    np.testing.assert_allclose(rows["red_bell/a.mp4"][0], audio_seq.mean(0), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(visual_seq, axis=1), 1.0, rtol=1e-5)
    info = read_cache_info(cache)
    assert info["encoder"]["name"] == "clip_clap" and info["extraction"]["precision"] == "fp32"
    towers = info["weights"]["towers"]
    assert towers["clip"]["weights_file"] == "open_clip_pytorch_model.bin"
    assert towers["clap"]["weights_file"] == "model.safetensors"
    shas = towers["clip"]["weights_sha256"], towers["clap"]["weights_sha256"]
    assert info["weights"]["sha256"] == f"clip:{shas[0]};clap:{shas[1]}"
    classes = read_class_table(cache)
    assert classes.names == ["blue_drum", "red_bell"] and classes.embeddings.shape == (2, 32)
    provenance = classes.provenance
    assert provenance["segments"] == {"clip_text": [0, 16], "clap_text": [16, 32]}
    assert provenance["templates"]["clip_text"]["set"] == "ucf_visual"
    assert provenance["templates"]["clap_text"]["templates"][0] == "a person {} can be heard."
    np.testing.assert_allclose(np.linalg.norm(classes.embeddings[:, :16], axis=1), 1.0, rtol=1e-5)
    assert classes.phrases == ["blue drum", "red bell"]


def test_zero_shot_method_scores_the_cache_with_its_recorded_slices(cache: Path) -> None:
    import torch

    from avzsl.extractors.text.text_towers import text_segments
    from avzsl.model.registry import FeatureBatch, FeatureDims, build_method

    table, classes = load_features(cache), read_class_table(cache)
    segments = text_segments(classes.provenance)
    assert segments == {"clip_text": (0, 16), "clap_text": (16, 32)}
    dims = FeatureDims(audio_dim=16, visual_dim=16, text_dim=32)
    options = {"clip_text_offset": segments["clip_text"][0], "clap_text_offset": segments["clap_text"][0]}
    method = build_method("zero_shot", dims, options)
    scores = method.scores(FeatureBatch(table.audio, table.visual), torch.from_numpy(classes.embeddings))
    assert scores.shape == (3, 2) and torch.isfinite(scores).all() and scores.abs().max() <= 1.0 + 1e-6


def _run(args: list[str], kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "AVZSL_KILL_AT"}
    if kill_at:
        env["AVZSL_KILL_AT"] = kill_at
    return subprocess.run([sys.executable, "-m", "avzsl.pipeline.cli.extract", *args], env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # two subprocesses that each import open_clip and transformers (~1 min on 2 cores)
def test_sigkill_then_rerun_equals_uninterrupted(cache: Path, world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cache"
    killed = _run(_args(world, out), kill_at="extract-shard-1-video-1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (out / "index.h5").exists()
    resumed = _run(_args(world, out))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "1 extracted now, 1 complete before" in resumed.stdout
    expected, got = _rows(cache), _rows(out)
    assert sorted(got) == sorted(expected)
    for vid, row in expected.items():
        for a, b in zip(row, got[vid], strict=True):
            np.testing.assert_array_equal(a, b)


def test_other_precision_or_encoder_set_is_another_cache(cache: Path, world: dict[str, Path], capsys) -> None:
    capsys.readouterr()
    assert cli_extract.main(_args(world, cache, "--precision", "bf16")) == 2
    assert "differs in: extraction" in capsys.readouterr().err
    assert cli_extract.main([*_args(world, cache)[:5], "clip_clap_per_second", *_args(world, cache)[6:]]) == 2
    assert "differs in: encoder" in capsys.readouterr().err


def test_missing_clap_checkpoint_is_refused_before_writing(world: dict[str, Path], tmp_path: Path, capsys) -> None:
    args = _args(world, tmp_path / "c")
    cut = args.index("--clap-checkpoint")
    assert cli_extract.main(args[:cut] + args[cut + 2 :]) == 2
    assert "needs --clap-checkpoint" in capsys.readouterr().err
    assert not list((tmp_path / "c").glob("shards/*"))


def test_renamed_checkpoint_key_is_refused_by_extract_naming_it(world: dict[str, Path], tmp_path: Path,
                                                                capsys) -> None:
    import shutil

    import torch

    state = torch.load(world["clip"], weights_only=True)
    state["visual.proj_renamed"] = state.pop("visual.proj")
    bad = tmp_path / "clip" / "open_clip_pytorch_model.bin"
    bad.parent.mkdir()
    torch.save(state, bad)
    shutil.copy(world["clip"].parent / "open_clip_config.json", bad.parent)
    args = _args(world, tmp_path / "c")
    args[args.index("--clip-checkpoint") + 1] = str(bad)
    capsys.readouterr()
    assert cli_extract.main(args) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "missing key(s) [visual.proj]" in err
    assert "unexpected key(s) [visual.proj_renamed]" in err
    assert not list((tmp_path / "c").glob("shards/*"))
