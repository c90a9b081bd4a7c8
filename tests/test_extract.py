"""avzsl-extract end to end on real tiny videos: statuses, shards, resume after SIGKILL, torchrun, refusals.

The real SeLaVi encoders run (random weights); every video has one 1-s window to keep the suite fast.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from avzsl.pipeline.cache import list_shards, load_features, read_cache_info, read_class_table, read_shard
from avzsl.pipeline.cli import extract as cli_extract
from tests.logtext import refusal_text
from tests.media import write_av, write_text_as_mp4, write_video_only

GOOD = {
    "red/a.mp4": dict(color=(250, 20, 20), freq_hz=300),
    "red/b.mp4": dict(color=(230, 30, 10), freq_hz=320),
    "blue/a.mp4": dict(color=(20, 20, 250), freq_hz=900),  # same stem as red/a.mp4: a distinct video
    "green/c.mkv": dict(color=(20, 240, 20), freq_hz=600),
}


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("videos")
    for rel, kw in GOOD.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        write_av(root / rel, duration_s=1.2, size=(64, 48), **kw)
    write_video_only(root / "blue" / "silent.mp4", duration_s=1.2)
    write_text_as_mp4(root / "green" / "notes.mp4")
    write_av(root / "green" / "short.mp4", duration_s=0.5)
    (root / "green" / "readme.txt").write_text("not a video")
    return root


def _args(videos: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--videos",
        str(videos),
        "--out",
        str(out),
        "--random-weights",
        "--shard-size",
        "3",
        "--workers",
        "1",
        "--batch-size",
        "2",
        "--no-progress",
        *extra,
    ]


@pytest.fixture(scope="session")
def reference_cache(tiny_videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "cache"
    assert cli_extract.main(_args(tiny_videos, out)) == 0
    return out


def _all_rows(cache: Path) -> dict[str, tuple]:
    rows = {}
    for shard in list_shards(cache):
        for v in read_shard(shard, with_sequences=True):
            rows[v.video_id] = (v.class_name, v.audio_mean, v.visual_mean, v.audio_seq, v.window_sec)
    return rows


def test_extract_records_every_video_and_writes_features(reference_cache: Path) -> None:
    cache = reference_cache
    manifest = (cache / "manifest.csv").read_text().splitlines()
    assert len(manifest) == 1 + 7  # the .txt file is not a video
    failures = {
        line.split(",")[0]: line.split(",")[3] for line in (cache / "failures.csv").read_text().splitlines()[1:]
    }
    assert failures == {"blue/silent.mp4": "no_audio", "green/notes.mp4": "unreadable", "green/short.mp4": "too_short"}
    table = load_features(cache)
    assert sorted(table.video_ids) == sorted(GOOD)
    assert table.audio.shape == (4, 512) and table.visual.shape == (4, 512)
    assert np.isfinite(table.audio.numpy()).all() and np.isfinite(table.visual.numpy()).all()
    rows = _all_rows(cache)
    # Same stem, different classes: two distinct videos with different features.
    assert not np.allclose(rows["red/a.mp4"][2], rows["blue/a.mp4"][2])
    name, audio_mean, _, audio_seq, window_sec = rows["red/b.mp4"]
    assert name == "red" and audio_seq.shape == (1, 512)
    np.testing.assert_allclose(audio_mean, audio_seq.mean(0))
    np.testing.assert_array_equal(window_sec, [[0.0, 1.0]])
    info = read_cache_info(cache)
    assert info["weights"]["sha256"] == "random" and info["finalized"] is True
    classes = read_class_table(cache)
    assert classes.names == ["blue", "green", "red"] and classes.embeddings.shape == (3, 50)
    stats = json.loads((cache / "shards" / "shard-00000.stats.json").read_text())
    assert stats["videos"] == 3 and "videos_per_s" in stats
    with h5py.File(cache / "shards" / "shard-00000.h5") as f:
        assert f.attrs["complete"]


def test_rerun_skips_complete_shards(reference_cache: Path, tiny_videos: Path, tmp_path: Path, capsys) -> None:
    copy = tmp_path / "cache"
    shutil.copytree(reference_cache, copy)
    before = {p.name: p.stat().st_mtime_ns for p in list_shards(copy)}
    capsys.readouterr()
    assert cli_extract.main(_args(tiny_videos, copy)) == 0
    assert "0 extracted now, 3 complete before" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in list_shards(copy)} == before


def _run_cli(args: list[str], kill_at: str | None = None, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    env.pop("AVZSL_KILL_AT", None)
    if kill_at:
        env["AVZSL_KILL_AT"] = kill_at
    cmd = [sys.executable, "-m", "avzsl.pipeline.cli.extract", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    "kill_at",
    ["extract-shard-1-video-1", pytest.param("before-rename:shard-00000.h5", marks=pytest.mark.slow)],
)
def test_sigkill_mid_extraction_then_rerun_equals_uninterrupted(
    reference_cache: Path, tiny_videos: Path, tmp_path: Path, kill_at: str
) -> None:
    out = tmp_path / "cache"
    killed = _run_cli(_args(tiny_videos, out), kill_at=kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (out / "index.h5").exists()
    resumed = _run_cli(_args(tiny_videos, out))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    expected, got = _all_rows(reference_cache), _all_rows(out)
    assert sorted(got) == sorted(expected)  # no video lost, none duplicated
    for vid, row in expected.items():
        for a, b in zip(row[1:], got[vid][1:], strict=True):
            np.testing.assert_array_equal(a, b)
    assert (out / "failures.csv").read_text() == (reference_cache / "failures.csv").read_text().replace(
        str(reference_cache), str(out)
    )
    assert not list(out.rglob("*.tmp"))


def test_torchrun_two_processes_build_the_same_cache(reference_cache: Path, tiny_videos: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [
        str(torchrun),
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "avzsl.pipeline.cli.extract",
        *_args(tiny_videos, out),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = {json.loads(p.read_text())["shard"]: p for p in (out / "shards").glob("*.stats.json")}
    assert sorted(ranks) == [0, 1, 2]
    with h5py.File(out / "shards" / "shard-00001.h5") as f:
        assert f.attrs["rank"] == 1
    expected, got = _all_rows(reference_cache), _all_rows(out)
    assert sorted(got) == sorted(expected)
    for vid, row in expected.items():
        # torchrun runs each rank single-threaded; float sums may round differently than two threads.
        np.testing.assert_allclose(row[1], got[vid][1], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(row[2], got[vid][2], rtol=1e-4, atol=1e-5)
    assert (out / "index.h5").is_file() and len(load_features(out)) == 4


def test_refusals_write_nothing(tiny_videos: Path, tmp_path: Path, reference_cache: Path) -> None:
    # No checkpoint and no --random-weights: refused with where the weights come from.
    out = tmp_path / "noweights"
    args = [a for a in _args(tiny_videos, out) if a != "--random-weights"]
    assert cli_extract.main(args) == 2
    assert "selavi" in refusal_text(out / "logs" / "rank-0.log").lower()
    assert not list_shards(out)
    # A class name missing from the word vectors: every missing class is listed, nothing extracted.
    odd = tmp_path / "odd"
    shutil.copytree(tiny_videos, odd)
    (odd / "red").rename(odd / "Qzxqvbnw")
    out2 = tmp_path / "oov"
    assert cli_extract.main(_args(odd, out2)) == 2
    assert "qzxqvbnw" in refusal_text(out2 / "logs" / "rank-0.log").lower()
    assert not list_shards(out2)
    # Different settings for an existing cache are refused.
    copy = tmp_path / "copy"
    shutil.copytree(reference_cache, copy)
    assert cli_extract.main(_args(tiny_videos, copy, "--windows", "avca")) == 2
    assert "different extraction" in refusal_text(copy / "logs" / "rank-0.log")


def test_manifest_paths_cannot_escape_the_videos_folder(tiny_videos: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,class_name\nred/a.mp4,red\n../../etc/passwd,red\n")
    out = tmp_path / "cache"
    assert cli_extract.main(_args(tiny_videos, out, "--manifest", str(manifest))) == 2
    assert "points outside" in refusal_text(out / "logs" / "rank-0.log")
