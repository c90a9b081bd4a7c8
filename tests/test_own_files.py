"""Never touch what is not avzsl's (issue 20, section 3).

Resuming removes only the temporary files avzsl itself wrote, by names only it uses (``.NAME.XXXX.tmp`` of the
files it writes, the legacy ``shard-XXXXX.h5.tmp``), never a user's ``notes.tmp``; and ``--overwrite`` with a new
seed on a two-rank cache leaves no shard of the old extraction that any rank would trust. Real runs, real rank
processes (``avzsl-extract --rank R --world-size 2``), real files.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from avzsl.pipeline import cache as C
from avzsl.pipeline.cache import CacheError, list_shards, load_features, read_cache_info, read_shard
from avzsl.pipeline.cli import extract as cli_extract
from avzsl.pipeline.interop.common import IMPORT_MARKER, prepare_output
from tests.hostile_tools import env, run_cli
from tests.media import write_av

TRAIN = "avzsl.pipeline.cli.train"
EXTRACT = "avzsl.pipeline.cli.extract"

USER_FILES = ("notes.tmp", ".notes.tmp", "stage1/notes.tmp", "mine/data.tmp", "stage1/.last.pt.tmp",
              "last.pt.tmp", ".model.pt.tmp")
"""Files a user keeps in a run directory whose names end in .tmp (none is a name avzsl writes)."""


def _train_args(cache: Path, splits: Path, out: Path) -> list[str]:
    return ["--cache", str(cache), "--splits", str(splits), "--out", str(out), "--method", "devise", "--epochs", "2",
            "--batch-size", "32", "--device", "cpu"]


def test_resuming_a_run_removes_only_its_own_temporary_files(synthetic_cache, tmp_path: Path) -> None:
    cache, splits = synthetic_cache
    run = tmp_path / "run"
    killed = run_cli(TRAIN, _train_args(cache, splits, run), kill_at="before-rename:last.pt")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    leftovers = list((run / "stage1").glob(".last.pt.*.tmp"))
    assert len(leftovers) == 1  # the interrupted checkpoint write
    for name in USER_FILES:
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(f"the user's own {name}\n")
    resumed = run_cli(TRAIN, _train_args(cache, splits, run))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "removed 1 temporary file(s) of the interrupted run" in resumed.stderr
    for name in USER_FILES:
        assert (run / name).read_text() == f"the user's own {name}\n", name
    assert not leftovers[0].exists()


def test_cache_leftover_cleanup_keeps_a_users_files(synthetic_cache, tmp_path: Path) -> None:
    cache, _ = synthetic_cache
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    ours = [copy / "shards" / "shard-00003.h5.tmp", copy / "shards" / ".shard-00000.h5.k2j4h5g6.tmp",
            copy / ".cache.json.abcd1234.tmp", copy / ".index.h5.zz99yy88.tmp"]
    theirs = [copy / "notes.tmp", copy / "shards" / "notes.tmp", copy / "shards" / "x.h5.tmp", copy / ".notes.a.tmp"]
    for path in [*ours, *theirs]:
        path.write_bytes(b"partial")
    removed = C.remove_temporary_files(copy)
    assert sorted(removed) == sorted(ours)
    assert all(p.exists() for p in theirs) and not any(p.exists() for p in ours)


def test_restarting_an_interrupted_import_keeps_a_users_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / IMPORT_MARKER).write_text("{}")  # the marker of an interrupted run
    (out / "shards").mkdir()
    ours = [out / ".cache.json.q1w2e3r4.tmp", out / f".{IMPORT_MARKER}.a1s2d3f4.tmp"]
    theirs = [out / "notes.tmp", out / ".notes.q1w2e3r4.tmp"]
    for path in [*ours, *theirs]:
        path.write_text("x")
    prepare_output(out, ["shards", "cache.json"], overwrite=False, what="cache", marker=IMPORT_MARKER)
    assert all(p.exists() for p in theirs) and not any(p.exists() for p in ours)
    assert not (out / "shards").exists()


# ------------------------------------------------------------------------------------------------------------------
# --overwrite on a two-rank cache


@pytest.fixture(scope="module")
def two_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("own-videos")
    (root / "red").mkdir()
    (root / "blue").mkdir()
    write_av(root / "red" / "a.mp4", duration_s=1.2, size=(64, 48), freq_hz=300)
    write_av(root / "blue" / "b.mp4", duration_s=1.2, size=(64, 48), color=(20, 20, 250), freq_hz=900)
    return root


def _rank_args(videos: Path, out: Path, rank: int, seed: int, *extra: str) -> list[str]:
    return ["--videos", str(videos), "--out", str(out), "--random-weights", "--seed", str(seed), "--shard-size", "1",
            "--workers", "0", "--batch-size", "2", "--no-progress", "--rank", str(rank), "--world-size", "2", *extra]


def _features(cache: Path) -> dict[str, bytes]:
    return {v.video_id: v.audio_mean.tobytes() + v.visual_mean.tobytes()
            for shard in list_shards(cache) for v in read_shard(shard)}


@pytest.mark.slow
def test_overwrite_with_a_new_seed_on_two_ranks_trusts_no_old_shard(two_videos: Path, tmp_path: Path) -> None:
    reference = tmp_path / "reference"  # one process, seed 1
    assert cli_extract.main(["--videos", str(two_videos), "--out", str(reference), "--random-weights", "--seed", "1",
                             "--shard-size", "1", "--workers", "0", "--batch-size", "2", "--no-progress"]) == 0
    cache = tmp_path / "cache"
    # Two real rank processes extract the cache with seed 0, at the same time.
    cmd = [sys.executable, "-m", EXTRACT]
    ranks = [subprocess.Popen([*cmd, *_rank_args(two_videos, cache, r, 0)], env=env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r in (0, 1)]
    for proc in ranks:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    old = _features(cache)
    assert len(old) == 2 and read_cache_info(cache)["finalized"]
    # Rank 0 replaces the extraction with seed 1: rank 1's shard is of the old extraction and must not be trusted.
    done = run_cli(EXTRACT, _rank_args(two_videos, cache, 0, 1, "--overwrite"), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert read_cache_info(cache)["extraction"]["seed"] == 1
    with pytest.raises(CacheError, match="not finalized"):
        load_features(cache)
    # Rank 1 (with the same command) finds its old shard untrusted and extracts it again; the cache is seed 1 only.
    done = run_cli(EXTRACT, _rank_args(two_videos, cache, 1, 1, "--overwrite"), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "another extraction" in done.stderr
    assert read_cache_info(cache)["finalized"]
    new = _features(cache)
    assert new == _features(reference)
    assert all(new[v] != old[v] for v in old)
    table = load_features(cache)
    ref = load_features(reference)
    assert table.video_ids == ref.video_ids
    np.testing.assert_array_equal(table.audio.numpy(), ref.audio.numpy())
    identities = set()
    for shard in list_shards(cache):
        with h5py.File(shard, "r") as f:
            identities.add(f.attrs["identity_sha256"])
    assert len(identities) == 1
    assert json.loads((cache / "cache.json").read_text())["extraction"]["seed"] == 1
