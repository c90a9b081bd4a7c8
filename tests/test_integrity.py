"""Checksummed artifacts and caches a later stage may trust (issue 10, items 1, 2, 8, 9 and the small ones).

Every fault is made on real files: one bit flipped at the file offset of a dataset's data (found through h5py's
storage info) or of a tensor record inside a checkpoint's zip archive, a shard deleted, a cache left unfinalized.
The readers must refuse with a message naming the file and what to rerun; nothing is silently trusted.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import psutil
import pytest

from avzsl.pipeline.cache import CacheError, list_shards, load_features, read_class_table, read_shard
from avzsl.pipeline.cli import evaluate as cli_evaluate
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.core.atomic import atomic_write_csv, atomic_write_text
from avzsl.pipeline.core.checksums import write_checked_json
from avzsl.pipeline.run.checkpoint import CheckpointCorruptError, load_checkpoint, save_checkpoint
from avzsl.pipeline.synth.features import SyntheticSpec, make_synthetic_cache
from tests.logtext import refusal_text


def flip_bit(path: Path, offset: int, bit: int = 0) -> None:
    """Flip one bit of ``path`` at byte ``offset`` (the file keeps its size)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def dataset_offset(path: Path, name: str) -> int:
    """File offset of the first byte of a dataset's data (its first chunk when chunked)."""
    with h5py.File(path, "r") as f:
        dataset = f[name]
        return dataset.id.get_chunk_info(0).byte_offset if dataset.chunks else dataset.id.get_offset()


def tensor_record_offset(checkpoint: Path) -> int:
    """File offset of the middle of the largest tensor record in a ``torch.save`` zip archive."""
    with zipfile.ZipFile(checkpoint) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with checkpoint.open("rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
    name_len, extra_len = int.from_bytes(header[26:28], "little"), int.from_bytes(header[28:30], "little")
    return info.header_offset + 30 + name_len + extra_len + info.file_size // 2


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A synthetic cache (real HDF5 shards written by the cache writer) with 4 shards, and its splits."""
    root = tmp_path_factory.mktemp("integrity")
    spec = SyntheticSpec(num_seen=4, num_val_unseen=2, num_test_unseen=2, videos_per_class=8, shard_size=20)
    make_synthetic_cache(root / "cache", root / "splits", spec)
    return root / "cache", root / "splits"


@pytest.fixture()
def cache(small_cache: tuple[Path, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "cache"
    shutil.copytree(small_cache[0], copy)
    return copy


def _train_args(cache: Path, splits: Path, out: Path) -> list[str]:
    return ["--cache", str(cache), "--splits", str(splits), "--out", str(out), "--epochs", "1", "--device", "cpu",
            "--batch-size", "16"]


@pytest.fixture(scope="module")
def trained(small_cache: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished training run on ``small_cache`` (copied by the tests that damage it)."""
    run = tmp_path_factory.mktemp("integrity-run") / "run"
    assert cli_train.main(_train_args(*small_cache, run)) == 0
    return run


@pytest.fixture()
def run(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)  # its config names the module's cache, which no test here damages
    return copy


def _files(directory: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(directory)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------------------------
# item 1: one flipped bit in a shard, the class table or a checkpoint is an error naming the file


def test_flipped_bit_in_shard_features_is_an_error_naming_the_shard(cache: Path, small_cache, tmp_path: Path) -> None:
    shard = list_shards(cache)[1]
    flip_bit(shard, dataset_offset(shard, "audio_mean") + 4 * 37 + 1)
    with pytest.raises(CacheError, match=rf"{shard.name}: checksum mismatch in 'audio_mean'.*rerun avzsl-extract"):
        load_features(cache)
    with pytest.raises(CacheError, match=rf"{shard.name}: shard checksum mismatch"):
        read_shard(shard)
    assert cli_train.main(_train_args(cache, small_cache[1], tmp_path / "run")) == 2
    assert "checksum mismatch" in refusal_text(tmp_path / "run" / "train.log")


def test_flipped_bit_in_class_embeddings_is_an_error_naming_the_class_table(cache: Path) -> None:
    table = cache / "classes.h5"
    flip_bit(table, dataset_offset(table, "embedding") + 9, bit=3)
    with pytest.raises(CacheError, match=r"classes.h5: class table checksum mismatch in 'embedding'.*rerun"):
        read_class_table(cache)


def test_flipped_bit_in_index_ids_is_an_error_naming_the_index(cache: Path) -> None:
    index = cache / "index.h5"
    data = index.read_bytes()
    flip_bit(index, data.index(b"class003/video_0005.mp4") + 6, bit=1)  # the id's bytes in HDF5's global heap
    with pytest.raises(CacheError, match=r"index.h5: index checksum mismatch in 'video_id'.*rerun avzsl-extract"):
        load_features(cache)


def test_flipped_bit_in_model_or_checkpoint_is_an_error(small_cache, run: Path, capsys) -> None:
    cache, splits = small_cache
    reference = json.loads((run / "metrics.json").read_text())
    model = run / "model.pt"
    flip_bit(model, tensor_record_offset(model), bit=2)
    capsys.readouterr()
    assert cli_evaluate.main(["--run", str(run), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert f"{model}: checksum mismatch" in err and "rerun avzsl-train" in err and "Traceback" not in err
    # The message's advice works: without model.pt the same command rebuilds it from stage 2's checkpoint.
    model.unlink()
    assert cli_train.main(_train_args(cache, splits, run)) == 0
    assert json.loads((run / "metrics.json").read_text()) == reference
    last = run / "stage1" / "last.pt"
    flip_bit(last, tensor_record_offset(last))
    with pytest.raises(CheckpointCorruptError, match=r"last.pt: checksum mismatch"):
        load_checkpoint(last)


def test_checkpoint_checksum_round_trip_covers_every_value(tmp_path: Path) -> None:
    import torch

    payload = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.zeros(2, dtype=torch.bfloat16),
               "n": 3, "opt": {"state": {0: {"step": torch.tensor(4.0)}}, "groups": [{"betas": (0.9, 0.999)}]}}
    path = tmp_path / "x.pt"
    save_checkpoint(path, payload)
    back = load_checkpoint(path)
    assert "content_sha256" not in back and torch.equal(back["w"], payload["w"])


# ------------------------------------------------------------------------------------------------------------------
# items 1 + 10: metrics.json carries its checksum; a deleted or damaged one of a finished run is regenerated


def test_deleted_or_damaged_metrics_of_a_finished_run_is_regenerated(small_cache, run: Path, capsys) -> None:
    cache, splits = small_cache
    reference = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").unlink()
    capsys.readouterr()
    assert cli_train.main(_train_args(cache, splits, run)) == 0
    captured = capsys.readouterr()
    assert "metrics.json: the test metrics of the finished run is missing: it is made again" in captured.err
    assert json.loads((run / "metrics.json").read_text()) == reference
    assert "content_sha256" in reference
    text = (run / "metrics.json").read_text()
    (run / "metrics.json").write_text(text.replace(f'"S": {reference["S"]}', '"S": 99.99', 1))
    assert cli_train.main(_train_args(cache, splits, run)) == 0
    assert "metrics.json: checksum mismatch" in capsys.readouterr().err
    assert json.loads((run / "metrics.json").read_text()) == reference
    assert cli_train.main(_train_args(cache, splits, run)) == 0
    assert "is up to date" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------------------------
# item 2: a cache that lost a shard since it was finalized is never trained on


def test_deleted_shard_is_an_error_and_training_does_not_run(cache: Path, small_cache, tmp_path: Path) -> None:
    shard = list_shards(cache)[2]
    shard.unlink()
    (cache / "index.h5").unlink()  # even with the index gone, nothing is re-indexed without the lost rows
    with pytest.raises(CacheError, match=rf"{shard.name}: shard is missing \(the cache held 64 videos in 4 shard"):
        load_features(cache)
    before = _files(cache)
    run = tmp_path / "run"
    assert cli_train.main(_train_args(cache, small_cache[1], run)) == 2
    assert "shard is missing" in refusal_text(run / "train.log")
    assert not (run / "model.pt").exists() and _files(cache) == before


# ------------------------------------------------------------------------------------------------------------------
# item 8: a cache still being extracted, or never finalized, is refused before anything is read or written


def test_training_on_an_unfinalized_cache_is_refused_and_writes_nothing(cache: Path, small_cache, tmp_path) -> None:
    info = json.loads((cache / "cache.json").read_text())
    info.pop("finalized", None)
    (cache / "cache.json").write_text(json.dumps(info))
    (cache / "index.h5").unlink()
    before = _files(cache)
    run = tmp_path / "run"
    assert cli_train.main(_train_args(cache, small_cache[1], run)) == 2
    assert "the cache is not finalized" in refusal_text(run / "train.log")
    assert _files(cache) == before  # avzsl-train wrote nothing into the cache (before: it built index.h5)


def test_training_while_extraction_holds_the_cache_is_refused(cache: Path, small_cache, tmp_path: Path) -> None:
    # A live process owning the rank lock, as avzsl-extract writes it (pid, host, process start time).
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        import socket

        lock = {"pid": owner.pid, "host": socket.gethostname(), "started": psutil.Process(owner.pid).create_time()}
        (cache / ".avzsl.lock.rank0of1").write_text(json.dumps(lock))
        before = _files(cache)
        run = tmp_path / "run"
        assert cli_train.main(_train_args(cache, small_cache[1], run)) == 2
        log = refusal_text(run / "train.log")
        assert f"extraction is still running (pid {owner.pid}" in log
        assert _files(cache) == before
    finally:
        owner.kill()
        owner.wait()
    # Once the owner is gone the lock is stale and the (finalized) cache is read.
    assert len(load_features(cache)) == 64


# ------------------------------------------------------------------------------------------------------------------
# item 9: written files honour the umask


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_written_files_honour_the_umask(tmp_path: Path, umask: int) -> None:
    """Every writer: atomic text/CSV/JSON (cache.json, CSVs, metrics.json, run files), checkpoints, HDF5 files."""
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        atomic_write_csv(tmp_path / "b.csv", ["a"], [[1]])
        write_checked_json(tmp_path / "metrics.json", {"S": 1.0})
        save_checkpoint(tmp_path / "model.pt", {"x": 1})
        spec = SyntheticSpec(num_seen=4, num_val_unseen=2, num_test_unseen=2, videos_per_class=2)
        make_synthetic_cache(tmp_path / "cache", tmp_path / "splits", spec)
    finally:
        os.umask(old)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    names = {"cache.json", "classes.h5", "index.h5", "index.csv", "shard-00000.h5", "a.txt", "b.csv", "model.pt",
             "metrics.json", "stage_1_train.csv"}
    assert names <= {p.name for p in written}
    modes = {str(p.relative_to(tmp_path)): oct(stat.S_IMODE(p.stat().st_mode)) for p in written}
    assert set(modes.values()) == {oct(0o666 & ~umask)}, modes


def test_verified_load_returns_the_rows_of_the_shards(cache: Path) -> None:
    table = load_features(cache)
    rows = {v.video_id: v.audio_mean for s in list_shards(cache) for v in read_shard(s)}
    assert len(table) == 64 and all(np.array_equal(table.audio[i].numpy(), rows[v]) for i, v in
                                    enumerate(table.video_ids))
