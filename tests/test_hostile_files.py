"""Hostile files inside caches and runs (issue 20, sections 4 and 6): lock files that are a FIFO or a symlink to
``/dev/zero``, HDF5 files of a cache that read other files (virtual sources outside the cache, external links,
external storage in a FIFO), 16 GiB sparse JSON files, a checkpoint tensor expanded far beyond its storage, and a
full disk while a checkpoint is saved.

Real caches (synthetic features, and one extracted from tiny videos with random encoder weights), real runs (the
fast ``devise`` method), real subprocesses with a timeout (a hang fails the test instead of the suite) and a memory
cap (a read without bound fails fast instead of filling the machine). Every refusal is one line naming the file,
exit code 2, no traceback. The extraction variants and the file-size-limit variant of the full disk are slow
(``-m slow``); the training variants of the same classes run by default.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from avzsl.pipeline.cache import CacheError, list_shards, load_features
from avzsl.pipeline.cli import extract as cli_extract
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.core.checksums import CHECKSUM_KEY
from avzsl.pipeline.core.errors import CheckpointCorruptError
from avzsl.pipeline.run.checkpoint import load_checkpoint
from tests.hostile_tools import assert_refused, limit_memory, run_cli
from tests.media import write_av

TRAIN = "avzsl.pipeline.cli.train"
EVALUATE = "avzsl.pipeline.cli.evaluate"
EXTRACT = "avzsl.pipeline.cli.extract"
SPARSE_SIZE = 16 << 30  # 16 GiB, sparse: no disk blocks


def _train_args(cache: Path, splits: Path, out: Path, *extra: str) -> list[str]:
    return ["--cache", str(cache), "--splits", str(splits), "--out", str(out), "--method", "devise", "--epochs", "2",
            "--batch-size", "32", "--device", "cpu", *extra]


def _extract_args(videos: Path, out: Path) -> list[str]:
    return ["--videos", str(videos), "--out", str(out), "--random-weights", "--shard-size", "1", "--workers", "0",
            "--batch-size", "2", "--no-progress"]


@pytest.fixture(scope="module")
def finished_run(synthetic_cache, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished devise run on the synthetic cache."""
    cache, splits = synthetic_cache
    run = tmp_path_factory.mktemp("hostile-run") / "run"
    assert cli_train.main(_train_args(cache, splits, run)) == 0
    return run


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two tiny videos and the cache extracted from them (random encoder weights, one video per shard)."""
    root = tmp_path_factory.mktemp("hostile-files")
    videos = root / "videos"
    (videos / "red").mkdir(parents=True)
    (videos / "blue").mkdir()
    write_av(videos / "red" / "a.mp4", duration_s=1.2, size=(64, 48), freq_hz=300)
    write_av(videos / "blue" / "b.mp4", duration_s=1.2, size=(64, 48), color=(20, 20, 250), freq_hz=900)
    cache = root / "cache"
    assert cli_extract.main(_extract_args(videos, cache)) == 0
    return videos, cache


def _hostile(path: Path, kind: str) -> None:
    """Make ``path`` a FIFO (no writer: opening it for reading blocks) or a symlink to ``/dev/zero`` (endless)."""
    if kind == "fifo":
        os.mkfifo(path)
    else:
        os.symlink("/dev/zero", path)


# ------------------------------------------------------------------------------------------------------------------
# lock files that are not regular files


@pytest.mark.parametrize("kind", ["fifo", "devzero"])
def test_run_lock_that_is_not_a_regular_file_is_refused(synthetic_cache, tmp_path: Path, kind: str) -> None:
    cache, splits = synthetic_cache
    run = tmp_path / "run"
    run.mkdir()
    _hostile(run / ".avzsl.lock", kind)
    done = run_cli(TRAIN, _train_args(cache, splits, run), timeout=120)
    assert_refused(done, str(run / ".avzsl.lock"), "not a regular file")
    assert (run / ".avzsl.lock").is_symlink() or (run / ".avzsl.lock").exists()  # refused, not removed
    assert not (run / "stage1").exists()


@pytest.mark.parametrize("kind", ["fifo", "devzero"])
def test_cache_lock_that_is_not_a_regular_file_is_refused(synthetic_cache, tmp_path: Path, kind: str) -> None:
    cache, splits = synthetic_cache
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    lock = copy / ".avzsl.lock.rank0of1"
    _hostile(lock, kind)
    done = run_cli(TRAIN, _train_args(copy, splits, tmp_path / "run"), timeout=120)
    assert_refused(done, str(lock), "not a regular file")


@pytest.mark.slow
def test_extraction_refuses_a_fifo_rank_lock(extracted, tmp_path: Path) -> None:
    videos, cache = extracted
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    lock = copy / ".avzsl.lock.rank0of1"
    os.mkfifo(lock)
    done = run_cli(EXTRACT, _extract_args(videos, copy), timeout=180)
    assert_refused(done, str(lock), "not a regular file")


# ------------------------------------------------------------------------------------------------------------------
# HDF5 files of a cache that read other files


def _outside_copy(cache: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of ``cache`` and, outside it, a copy of its first shard (same features: checksums still agree)."""
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    outside = tmp_path / "elsewhere" / "shard.h5"
    outside.parent.mkdir()
    shutil.copy(list_shards(copy)[0], outside)
    return copy, outside


def test_index_virtual_source_outside_the_cache_is_refused(synthetic_cache, tmp_path: Path) -> None:
    cache, splits = synthetic_cache
    copy, outside = _outside_copy(cache, tmp_path)
    index = copy / "index.h5"
    with h5py.File(index, "a") as f:
        shape = f["audio_mean"].shape
        del f["audio_mean"]
        layout = h5py.VirtualLayout(shape=shape, dtype=np.float32)
        layout[:] = h5py.VirtualSource(str(outside), "audio_mean", shape=shape)
        f.create_virtual_dataset("audio_mean", layout, fillvalue=np.nan)
    with pytest.raises(CacheError, match="outside the cache") as caught:
        load_features(copy)
    assert str(index) in str(caught.value) and str(outside) in str(caught.value)
    done = run_cli(TRAIN, _train_args(copy, splits, tmp_path / "run"), timeout=120)
    assert_refused(done, str(index), str(outside))


def test_index_external_link_is_refused(synthetic_cache, tmp_path: Path) -> None:
    cache, _ = synthetic_cache
    copy, outside = _outside_copy(cache, tmp_path)
    index = copy / "index.h5"
    target = outside.with_name("features.h5")
    with h5py.File(index, "r") as f, h5py.File(target, "w") as out:
        out["visual_mean"] = f["visual_mean"][...]  # the very same numbers, in a file that is not the cache's
    with h5py.File(index, "a") as f:
        del f["visual_mean"]
        f["visual_mean"] = h5py.ExternalLink(str(target), "visual_mean")
    with pytest.raises(CacheError, match="external link") as caught:
        load_features(copy)
    assert str(index) in str(caught.value) and str(target) in str(caught.value)


def _external_storage_in_fifo(shard: Path, fifo: Path, name: str = "audio_mean") -> None:
    """Rewrite dataset ``name`` of ``shard`` with HDF5 external storage in ``fifo`` (same bytes, then a FIFO)."""
    with h5py.File(shard, "a") as f:
        data = f[name][...]
        del f[name]
        f.create_dataset(name, data=data, external=[(str(fifo), 0, h5py.h5f.UNLIMITED)])
    assert fifo.stat().st_size == data.nbytes  # the bytes went to the external file
    fifo.unlink()
    os.mkfifo(fifo)  # now the storage is a FIFO nobody writes to: reading it blocks


def test_shard_with_external_storage_in_a_fifo_is_refused_by_train(synthetic_cache, tmp_path: Path) -> None:
    cache, splits = synthetic_cache
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    shard = list_shards(copy)[0]
    _external_storage_in_fifo(shard, tmp_path / "storage.fifo")
    done = run_cli(TRAIN, _train_args(copy, splits, tmp_path / "run"), timeout=120)
    assert_refused(done, str(shard), "external storage")


@pytest.mark.slow
def test_shard_with_external_storage_in_a_fifo_is_refused_by_extract(extracted, tmp_path: Path) -> None:
    videos, cache = extracted
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    shard = list_shards(copy)[0]
    _external_storage_in_fifo(shard, tmp_path / "storage.fifo")
    done = run_cli(EXTRACT, _extract_args(videos, copy), timeout=240)
    assert_refused(done, str(shard), "external storage")


def test_shard_file_that_is_a_fifo_is_refused(synthetic_cache, tmp_path: Path) -> None:
    cache, splits = synthetic_cache
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    shard = list_shards(copy)[0]
    shard.unlink()
    os.mkfifo(shard)
    done = run_cli(TRAIN, _train_args(copy, splits, tmp_path / "run"), timeout=120)
    assert_refused(done, str(shard), "not a regular file")


# ------------------------------------------------------------------------------------------------------------------
# JSON files of 16 GiB


def _sparse(path: Path) -> None:
    """Extend ``path`` to :data:`SPARSE_SIZE` bytes without writing them (its real content stays at the start)."""
    with path.open("r+b") as f:
        f.truncate(SPARSE_SIZE)


def test_oversized_config_json_is_refused(finished_run, tmp_path: Path, synthetic_cache) -> None:
    cache, splits = synthetic_cache
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    (run / "metrics.json").unlink()  # not up to date: the stored configuration is read
    _sparse(run / "config.json")
    done = run_cli(TRAIN, _train_args(cache, splits, run), timeout=120)
    assert_refused(done, str(run / "config.json"), "too large")
    done = run_cli(EVALUATE, ["--run", str(run), "--device", "cpu"], timeout=120)
    assert_refused(done, str(run / "config.json"), "too large")


def test_oversized_metrics_json_is_made_again(finished_run, tmp_path: Path, synthetic_cache) -> None:
    cache, splits = synthetic_cache
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    expected = json.loads((finished_run / "metrics.json").read_text())
    _sparse(run / "metrics.json")
    done = run_cli(TRAIN, _train_args(cache, splits, run), timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "metrics.json" in done.stderr and "too large" in done.stderr
    assert json.loads((run / "metrics.json").read_text()) == expected


def test_oversized_cache_json_is_refused(synthetic_cache, tmp_path: Path) -> None:
    cache, splits = synthetic_cache
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    _sparse(copy / "cache.json")
    done = run_cli(TRAIN, _train_args(copy, splits, tmp_path / "run"), timeout=120)
    assert_refused(done, str(copy / "cache.json"), "too large")


# ------------------------------------------------------------------------------------------------------------------
# a checkpoint tensor expanded far beyond its storage


def test_checkpoint_tensor_bigger_than_its_storage_is_refused(finished_run, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    model = run / "model.pt"
    payload = torch.load(model, map_location="cpu", weights_only=True)
    key = sorted(payload["state_dict"])[0]
    # One stored float viewed as 10^6 x 10^6 (stride 0): 4 TB once anything makes it contiguous.
    payload["state_dict"][key] = torch.zeros(1).expand(10**6, 10**6)
    torch.save(payload, model)  # keeps its old content_sha256: a reader must not hash 4 TB to find out
    assert CHECKSUM_KEY in payload and model.stat().st_size < 1 << 20
    done = run_cli(EVALUATE, ["--run", str(run), "--device", "cpu"], timeout=120)
    assert_refused(done, str(model), key)
    with pytest.raises(CheckpointCorruptError, match="storage"):
        load_checkpoint(model)


# ------------------------------------------------------------------------------------------------------------------
# a full disk while a checkpoint is saved


def _interrupted_after_first_epoch(cache: Path, splits: Path, run: Path) -> bytes:
    """Start a 2-epoch run in ``run`` and kill it after its first stage-1 checkpoint; returns that checkpoint."""
    killed = run_cli(TRAIN, _train_args(cache, splits, run), kill_at="stage1-epoch-1")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    return (run / "stage1" / "last.pt").read_bytes()


def _assert_checkpoint_kept(run: Path, before: bytes) -> None:
    assert (run / "stage1" / "last.pt").read_bytes() == before  # the old checkpoint is intact
    assert not list(run.rglob(".last.pt.*.tmp"))
    assert not (run / "model.pt").exists()


def _can_mount_tmpfs(tmp: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    target = tmp / "mount-check"
    target.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(target)]).returncode != 0:
        return False
    subprocess.run(["umount", str(target)], check=True)
    return True


def test_full_disk_while_saving_a_checkpoint_is_one_line(finished_run, synthetic_cache, tmp_path: Path) -> None:
    if not _can_mount_tmpfs(tmp_path):
        pytest.skip("no tmpfs mount here (needs root); the RLIMIT_FSIZE variant covers the same path")
    cache, splits = synthetic_cache
    disk = tmp_path / "disk"
    disk.mkdir()
    assert subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(disk)]).returncode == 0
    try:
        run = disk / "run"
        before = _interrupted_after_first_epoch(cache, splits, run)
        # Leave less room than one checkpoint (~36 KiB) but enough for the log lines of the rerun.
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "filler").write_bytes(b"\0" * (free - 24 * 1024))
        done = run_cli(TRAIN, _train_args(cache, splits, run))
        line = assert_refused(done, "disk full while writing", str(run / "stage1" / "last.pt"))
        assert "run the same command again" in line
        _assert_checkpoint_kept(run, before)
        (disk / "filler").unlink()
        done = run_cli(TRAIN, _train_args(cache, splits, run))
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads((run / "metrics.json").read_text()) == json.loads((finished_run / "metrics.json").read_text())
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _limit_file_size() -> None:
    limit_memory()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, not a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))


@pytest.mark.slow
def test_file_size_limit_while_saving_a_checkpoint_is_one_line(finished_run, synthetic_cache, tmp_path: Path) -> None:
    cache, splits = synthetic_cache
    run = tmp_path / "run"
    before = _interrupted_after_first_epoch(cache, splits, run)
    assert len(before) > 16 * 1024
    done = run_cli(TRAIN, _train_args(cache, splits, run), preexec=_limit_file_size)
    assert_refused(done, "file size limit hit while writing", str(run / "stage1" / "last.pt"))
    _assert_checkpoint_kept(run, before)
    done = run_cli(TRAIN, _train_args(cache, splits, run))
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((run / "metrics.json").read_text()) == json.loads((finished_run / "metrics.json").read_text())
