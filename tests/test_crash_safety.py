"""Crash safety across stages: SIGKILL at named crash points, locks, corrupt shards, full disk, read-only output.

Real subprocesses are killed through ``AVZSL_KILL_AT`` (``pipeline/core/faults.py``) and the same command is run again;
the result must equal an uninterrupted run, with nothing lost or duplicated and no temporary files left. Extraction
uses two tiny valid videos and a text file (one window each, shard size 1); the other stages use tiny synthetic
inputs. Mount-based tests (a 256 KiB tmpfs for a full disk, a read-only bind mount) need root and skip otherwise;
the file-size-limit variant of the full disk (``RLIMIT_FSIZE``) works for anyone.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from avzsl.pipeline.cache import (
    CacheError,
    list_shards,
    load_features,
    read_cache_info,
    read_class_table,
    read_shard,
    shard_is_complete,
)
from avzsl.pipeline.cli import extract as cli_extract
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.interop.avca import EXPORT_MARKER, IMPORT_MARKER, export_avca, import_avca
from tests.logtext import refusal_text
from tests.media import write_av, write_text_as_mp4
from tests.test_avca import _cache_state, make_avca

LOCK = ".avzsl.lock.rank0of1"


# ------------------------------------------------------------------------------------------------------------------
# helpers


def _extract_args(videos: Path, out: Path) -> list[str]:
    return ["--videos", str(videos), "--out", str(out), "--random-weights", "--shard-size", "1", "--workers", "0",
            "--batch-size", "2", "--no-progress"]


def _env(kill_at: str | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AVZSL_KILL_AT"}
    if kill_at:
        env["AVZSL_KILL_AT"] = kill_at
    return env


def _run(module: str, args: list[str], kill_at: str | None = None, **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", module, *args]
    return subprocess.run(cmd, env=_env(kill_at), capture_output=True, text=True, timeout=600, **kw)


def _extract_state(cache: Path) -> dict:
    """Everything a finished extraction wrote that must not depend on interruptions (paths made relative)."""
    rows = {}
    for shard in list_shards(cache):
        for v in read_shard(shard, with_sequences=True):
            assert v.video_id not in rows, f"{v.video_id} stored twice"
            rows[v.video_id] = (v.class_name, v.audio_mean.tobytes(), v.visual_mean.tobytes(), v.audio_seq.tobytes())
    texts = {name: (cache / name).read_text().replace(str(cache), "CACHE") for name in
             ("index.csv", "manifest.csv", "failures.csv")}
    table = load_features(cache)
    classes = read_class_table(cache)
    info = read_cache_info(cache)
    return {"rows": rows, "texts": texts, "index": (table.video_ids, table.audio.numpy().tobytes()),
            "classes": (classes.names, classes.embeddings.tobytes()), "finalized": info.get("finalized")}


def _assert_clean(cache: Path) -> None:
    assert not list(cache.rglob("*.tmp")), list(cache.rglob("*.tmp"))
    assert not list(cache.glob(".avzsl*lock*")), list(cache.glob(".avzsl*lock*"))
    assert all(shard_is_complete(p) for p in list_shards(cache))


def _mount(*args: str) -> bool:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    return done.returncode == 0


def _can_mount(tmp: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    target = tmp / "mount-check"
    target.mkdir()
    if not _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(target)):
        return False
    subprocess.run(["umount", str(target)], check=True)
    return True


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crash-videos")
    (root / "red").mkdir()
    (root / "blue").mkdir()
    write_av(root / "red" / "a.mp4", duration_s=1.2, size=(64, 48), freq_hz=300)
    write_av(root / "blue" / "b.mp4", duration_s=1.2, size=(64, 48), color=(20, 20, 250), freq_hz=900)
    write_text_as_mp4(root / "blue" / "notes.mp4")
    return root


@pytest.fixture(scope="module")
def reference(videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crash-ref") / "cache"
    assert cli_extract.main(_extract_args(videos, out)) == 0
    return out


def _shards_done_copy(reference: Path, out: Path) -> None:
    """``out`` as a run that extracted every shard and was stopped before finalizing."""
    shutil.copytree(reference, out)
    for name in ("index.h5", "index.csv", "classes.h5", "manifest.csv", "failures.csv"):
        (out / name).unlink()
    info = read_cache_info(out)
    info.pop("finalized")
    (out / "cache.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


# ------------------------------------------------------------------------------------------------------------------
# extraction: finalize


@pytest.mark.parametrize(
    "points",
    [
        ["before-rename:index.h5"],
        pytest.param(["extract-finalize", "before-rename:index.csv", "before-rename:failures.csv",
                      "before-rename:cache.json"], marks=pytest.mark.slow),
    ],
)
def test_kill_in_finalize_then_rerun_is_complete_and_identical(
    reference: Path, videos: Path, tmp_path: Path, points: list[str]
) -> None:
    out = tmp_path / "cache"
    _shards_done_copy(reference, out)
    for point in points:
        killed = _run("avzsl.pipeline.cli.extract", _extract_args(videos, out), kill_at=point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
        assert read_cache_info(out).get("finalized") is None, point
    resumed = _run("avzsl.pipeline.cli.extract", _extract_args(videos, out))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "cache    complete" in resumed.stdout
    assert _extract_state(out) == _extract_state(reference)
    _assert_clean(out)


@pytest.mark.slow
def test_fresh_run_killed_after_its_last_shard(reference: Path, videos: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    killed = _run("avzsl.pipeline.cli.extract", _extract_args(videos, out), kill_at="extract-finalize")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert len(list_shards(out)) == 3 and not (out / "index.h5").exists()
    assert (out / ".avzsl.finalize.lock").exists()  # the dead process's lock: recovered by the rerun
    resumed = _run("avzsl.pipeline.cli.extract", _extract_args(videos, out))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "0 extracted now, 3 complete before" in resumed.stdout
    assert _extract_state(out) == _extract_state(reference)
    _assert_clean(out)


# ------------------------------------------------------------------------------------------------------------------
# extraction: locks

_PAUSED = """
import sys, time
import avzsl.pipeline.extract.shard as extract
def pause(name):
    if name == "extract-shard-0-video-1":
        time.sleep(300)  # hold the cache lock mid-shard until the test kills this process
extract.crash_point = pause
from avzsl.pipeline.cli.extract import main
sys.exit(main(sys.argv[1:]))
"""


def test_second_process_refused_while_first_runs_then_stale_lock_recovered(
    reference: Path, videos: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "cache"
    first = subprocess.Popen([sys.executable, "-c", _PAUSED, *_extract_args(videos, out)], env=_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (out / LOCK).exists():
            assert first.poll() is None, "the first extraction ended before taking its lock"
            assert time.monotonic() < deadline
            time.sleep(0.2)
        capsys.readouterr()
        assert cli_extract.main(_extract_args(videos, out)) == 2
        err = capsys.readouterr().err
        assert "in use by process" in err and str(first.pid) in err and "Traceback" not in err
        assert first.poll() is None
    finally:
        first.kill()
        first.wait()
    assert (out / LOCK).exists()  # left by the killed process
    assert cli_extract.main(_extract_args(videos, out)) == 0
    assert "recovering a stale lock" in capsys.readouterr().err
    assert _extract_state(out) == _extract_state(reference)
    _assert_clean(out)


# ------------------------------------------------------------------------------------------------------------------
# corrupt shards


def test_truncated_shard_is_reported_by_load_and_redone_by_extract(
    reference: Path, videos: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "cache"
    shutil.copytree(reference, out)
    shard = out / "shards" / "shard-00001.h5"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    (out / "index.h5").unlink()  # a reader must not quietly index the remaining shards
    with pytest.raises(CacheError, match="shard-00001.h5: shard is truncated or corrupt"):
        load_features(out)
    capsys.readouterr()
    assert cli_extract.main(_extract_args(videos, out)) == 0
    captured = capsys.readouterr()
    assert "shard-00001.h5 is truncated or corrupt: extracting it again" in captured.err
    assert "1 extracted now, 2 complete before" in captured.out
    assert _extract_state(out) == _extract_state(reference)
    _assert_clean(out)


def test_truncated_shard_is_reported_by_train(synthetic_cache, tmp_path: Path) -> None:
    cache, splits = synthetic_cache
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    shard = list_shards(copy)[0]
    shard.write_bytes(shard.read_bytes()[:4096])
    run = tmp_path / "run"
    args = ["--cache", str(copy), "--splits", str(splits), "--out", str(run), "--epochs", "1", "--device", "cpu"]
    assert cli_train.main(args) == 2
    assert "truncated or corrupt" in refusal_text(run / "train.log")


# ------------------------------------------------------------------------------------------------------------------
# full disk and read-only output


def test_full_disk_is_reported_and_rerun_after_freeing_space_completes(
    reference: Path, videos: Path, tmp_path: Path, capsys
) -> None:
    if not _can_mount(tmp_path):
        pytest.skip("no tmpfs mount here (needs root); the RLIMIT_FSIZE variant covers the same path")
    disk = tmp_path / "disk"
    disk.mkdir()
    assert _mount("-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk))
    try:
        # Leave ~24 KiB: cache.json and the log fit, the first shard (~22 KiB) does not.
        free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
        (disk / "filler").write_bytes(b"\0" * (free - 24 * 1024))
        out = disk / "cache"
        capsys.readouterr()
        assert cli_extract.main(_extract_args(videos, out)) == 2
        err = capsys.readouterr().err
        assert "disk full while writing" in err and "run the same command again" in err, err[-2000:]
        assert "Traceback" not in err
        _assert_clean(out)
        assert len(list_shards(out)) < 3
        (disk / "filler").unlink()
        assert cli_extract.main(_extract_args(videos, out)) == 0
        assert _extract_state(out) == _extract_state(reference)
        _assert_clean(out)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG, not a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))


@pytest.mark.slow
def test_file_size_limit_is_reported_and_rerun_completes(reference: Path, videos: Path, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    limited = _run("avzsl.pipeline.cli.extract", _extract_args(videos, out), preexec_fn=_limit_file_size)
    assert limited.returncode == 2, limited.stderr[-3000:]
    assert "file size limit hit while writing" in limited.stderr and "Traceback" not in limited.stderr
    _assert_clean(out)
    resumed = _run("avzsl.pipeline.cli.extract", _extract_args(videos, out))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _extract_state(out) == _extract_state(reference)


def test_read_only_output_is_reported(reference: Path, videos: Path, tmp_path: Path, capsys) -> None:
    if not _can_mount(tmp_path):
        pytest.skip("no read-only bind mount here (needs root); as root chmod does not stop writes")
    source, target = tmp_path / "source", tmp_path / "readonly"
    source.mkdir()
    target.mkdir()
    shutil.copytree(reference, source / "done")
    assert _mount("--bind", str(source), str(target))
    try:
        assert _mount("-o", "remount,ro,bind", str(target))
        capsys.readouterr()
        # A new cache in a read-only folder: refused at once.
        assert cli_extract.main(_extract_args(videos, target / "new")) == 2
        err = capsys.readouterr().err
        assert "read-only file system" in err and "Traceback" not in err
        # A complete cache on a read-only mount: the rerun cannot even take its lock; nothing changes.
        before = _extract_state(source / "done")
        assert cli_extract.main(_extract_args(videos, target / "done")) == 2
        err = capsys.readouterr().err
        assert "read-only file system" in err and "Traceback" not in err
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)
    assert _extract_state(source / "done") == before
    _assert_clean(source / "done")


# ------------------------------------------------------------------------------------------------------------------
# AVCA import / export


def _h5_tree(root: Path) -> dict[str, tuple]:
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.suffix == ".h5":
            with h5py.File(path, "r") as f:
                out[rel] = (f["data"][...].tobytes(), f["video_urls"].dtype.str, list(f["video_urls"][...]))
        elif path.suffix == ".npy":
            text = np.load(path, allow_pickle=True).item()
            out[rel] = sorted((k, v.tobytes()) for k, v in text.items())
        elif path.is_file():
            out[rel] = path.read_bytes()
    return out


@pytest.mark.parametrize(
    "points",
    [
        ["avca-import-shard-1"],
        pytest.param(["before-done:" + IMPORT_MARKER, "before-rename:shard-00000.h5", "before-rename:stage_2_train.csv",
                      "before-rename:cache.json", "before-rename:index.h5"], marks=pytest.mark.slow),
    ],
)
def test_avca_import_killed_then_rerun_equals_uninterrupted(tmp_path: Path, points: list[str]) -> None:
    root = tmp_path / "TINY"
    make_avca(root)
    reference = tmp_path / "ref"
    import_avca(root, reference, shard_size=4)
    out = tmp_path / "cache"
    args = ["avca", "--root", str(root), "--out", str(out), "--shard-size", "4"]
    for point in points:
        killed = _run("avzsl.pipeline.cli.import_features", args, kill_at=point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
        assert (out / IMPORT_MARKER).exists()
    resumed = _run("avzsl.pipeline.cli.import_features", args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "interrupted run" in resumed.stderr
    feats, classes, membership = _cache_state(out)
    ref_feats, ref_classes, ref_membership = _cache_state(reference)
    assert sorted(feats) == sorted(ref_feats) and len(load_features(out)) == 12  # nothing duplicated
    for vid, (cls, audio, visual) in ref_feats.items():
        assert feats[vid][0] == cls
        np.testing.assert_array_equal(feats[vid][1], audio)
        np.testing.assert_array_equal(feats[vid][2], visual)
    assert (classes.names, classes.phrases) == (ref_classes.names, ref_classes.phrases)
    np.testing.assert_array_equal(classes.embeddings, ref_classes.embeddings)
    assert membership == ref_membership
    assert [p.name for p in list_shards(out)] == [p.name for p in list_shards(reference)]
    assert not (out / IMPORT_MARKER).exists() and not (out / ".avzsl.lock").exists()
    assert not list(out.rglob("*.tmp"))
    # The same command on the finished cache is refused (it is not an interrupted one).
    again = _run("avzsl.pipeline.cli.import_features", args)
    assert again.returncode == 2 and "--overwrite" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.parametrize(
    "points",
    [
        ["avca-export-stage_1_val_seen"],
        pytest.param(["before-rename:Archery.h5", "avca-export-stage_2_test_unseen",
                      "before-rename:word_embeddings_tiny_normed.npy", "before-done:" + EXPORT_MARKER],
                     marks=pytest.mark.slow),
    ],
)
def test_avca_export_killed_then_rerun_equals_uninterrupted(tmp_path: Path, points: list[str]) -> None:
    root = tmp_path / "TINY"
    make_avca(root)
    cache = tmp_path / "cache"
    import_avca(root, cache, shard_size=4)
    reference = tmp_path / "ref-export"
    export_avca(cache, reference)
    out = tmp_path / "export"
    args = ["avca", "--cache", str(cache), "--out", str(out)]
    for point in points:
        killed = _run("avzsl.pipeline.cli.export_features", args, kill_at=point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
        assert (out / EXPORT_MARKER).exists()
    resumed = _run("avzsl.pipeline.cli.export_features", args)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert _h5_tree(out) == _h5_tree(reference)
    assert not (out / EXPORT_MARKER).exists() and not (out / ".avzsl.lock").exists()


def test_manifest_csv_lists_every_video_once(reference: Path) -> None:
    with (reference / "manifest.csv").open(newline="", encoding="utf-8") as f:
        ids = [row["video_id"] for row in csv.DictReader(f)]
    assert sorted(ids) == ["blue/b.mp4", "blue/notes.mp4", "red/a.mp4"]
