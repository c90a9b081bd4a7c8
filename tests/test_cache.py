"""The feature cache: atomic shards, completeness checks, the virtual-dataset index, class tables."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from avzsl.pipeline import cache as C


def _videos(n: int, start: int = 0, with_seq: bool = False) -> list[C.VideoFeatures]:
    rng = np.random.default_rng(start)
    out = []
    for i in range(start, start + n):
        item = C.VideoFeatures(
            f"cls{i % 3}/v{i}.mp4", f"cls{i % 3}", rng.random(4, np.float32), rng.random(6, np.float32)
        )
        if with_seq:
            t = 1 + i % 3
            item.audio_seq = rng.random((t, 4), np.float32)
            item.visual_seq = rng.random((t, 6), np.float32)
            item.window_sec = np.stack([np.arange(t), np.arange(t) + 1], 1).astype(np.float32)
        out.append(item)
    return out


def _make_cache(root: Path, with_seq: bool = False) -> list[C.VideoFeatures]:
    C.write_cache_info(root, {"encoder": {"name": "test"}, "weights": {"sha256": "random"}})
    a, b = _videos(5, 0, with_seq), _videos(3, 5, with_seq)
    C.write_shard(C.shard_path(root, 0), a, {"shard_index": 0})
    C.write_shard(C.shard_path(root, 7), b, {"shard_index": 7})
    return a + b


def test_shard_roundtrip_with_sequences(tmp_path: Path) -> None:
    videos = _make_cache(tmp_path, with_seq=True)
    back = C.read_shard(C.shard_path(tmp_path, 0), with_sequences=True) + C.read_shard(
        C.shard_path(tmp_path, 7), with_sequences=True
    )
    assert [v.video_id for v in back] == [v.video_id for v in videos]
    for a, b in zip(videos, back, strict=True):
        np.testing.assert_array_equal(a.audio_mean, b.audio_mean)
        np.testing.assert_array_equal(a.visual_seq, b.visual_seq)
        np.testing.assert_array_equal(a.window_sec, b.window_sec)
    assert not list((tmp_path / "shards").glob("*.tmp"))
    assert C.read_shard_attrs(C.shard_path(tmp_path, 7))["shard_index"] == 7


def test_index_reads_every_row_and_survives_a_move(tmp_path: Path) -> None:
    videos = _make_cache(tmp_path / "a")
    assert C.finalize(tmp_path / "a") == 8
    shutil.move(tmp_path / "a", tmp_path / "b")
    table = C.load_features(tmp_path / "b")
    assert table.video_ids == [v.video_id for v in videos]
    np.testing.assert_array_equal(table.visual.numpy(), np.stack([v.visual_mean for v in videos]))
    with h5py.File(tmp_path / "b" / C.INDEX_H5) as f:
        assert f["audio_mean"].is_virtual
    sub = C.load_features(tmp_path / "b", ["cls1/v7.mp4", "cls0/v0.mp4"])
    np.testing.assert_array_equal(sub.audio[0].numpy(), videos[7].audio_mean)
    with pytest.raises(C.CacheError, match="not in the cache"):
        C.load_features(tmp_path / "b", ["nope"])


def test_incomplete_and_corrupt_shards_are_not_trusted(tmp_path: Path) -> None:
    _make_cache(tmp_path)
    good = C.shard_path(tmp_path, 0)
    assert C.shard_is_complete(good)
    truncated = C.shard_path(tmp_path, 1)
    truncated.write_bytes(good.read_bytes()[:500])
    assert not C.shard_is_complete(truncated)
    with h5py.File(C.shard_path(tmp_path, 7), "a") as f:
        f.attrs["complete"] = False
    assert not C.shard_is_complete(C.shard_path(tmp_path, 7))
    # The index covers only complete shards, and loading rebuilds a stale index.
    assert C.finalize(tmp_path) == 5
    with pytest.raises(C.CacheError, match="incomplete or corrupt"):
        C.read_shard(truncated)


def test_temporary_leftovers_are_removed(tmp_path: Path) -> None:
    _make_cache(tmp_path)
    (tmp_path / "shards" / "shard-00003.h5.tmp").write_bytes(b"partial")
    removed = C.remove_temporary_files(tmp_path)
    assert [p.name for p in removed] == ["shard-00003.h5.tmp"]


def test_duplicate_ids_across_shards_are_an_error(tmp_path: Path) -> None:
    _make_cache(tmp_path)
    C.write_shard(C.shard_path(tmp_path, 9), _videos(1, 0), {})
    with pytest.raises(C.CacheError, match="appears in shard 0 and shard 9"):
        C.finalize(tmp_path)


def test_class_table_roundtrip_and_case_insensitive_lookup(tmp_path: Path) -> None:
    table = C.ClassTable(["HandstandPushups", "YoYo"], ["handstand pushups", "yo yo"], np.eye(2, 3), {"embedder": "x"})
    C.write_class_table(tmp_path, table)
    back = C.read_class_table(tmp_path)
    assert back.names == table.names and back.provenance == {"embedder": "x"}
    np.testing.assert_array_equal(back.lookup(["HandStandPushups"]), np.eye(2, 3)[:1])
    with pytest.raises(C.CacheError, match="Missing"):
        back.lookup(["Missing"])
    with pytest.raises(ValueError, match="unique"):
        C.ClassTable(["a", "A"], ["a", "a"], np.zeros((2, 3)))


def test_cache_info_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(C.CacheError, match="not an avzsl feature cache"):
        C.read_cache_info(tmp_path)
    (tmp_path / C.CACHE_INFO).write_text("{broken")
    with pytest.raises(C.CacheError, match="corrupt"):
        C.read_cache_info(tmp_path)
    C.write_cache_info(tmp_path, {"weights": {"sha256": "random"}})
    assert C.weights_are_random(C.read_cache_info(tmp_path))


def test_rerun_scan_removes_owned_temporaries_redoes_changed_shards_and_recovers_stats(tmp_path: Path) -> None:
    _make_cache(tmp_path)
    shards = tmp_path / "shards"
    # The name older avzsl versions used, atomic_write's name, and a stats file's temporary.
    names = ("shard-00000.h5.tmp", ".shard-00000.h5.a1b2c3.tmp", ".shard-00000.stats.json.x.tmp")
    owned = [shards / name for name in names]
    other = shards / ".shard-00007.h5.d4e5f6.tmp"  # shard 7 is not in ``owned``: another rank's live write
    for path in [*owned, other]:
        path.write_bytes(b"partial")
    assert C.shards_to_extract(tmp_path, [0], lambda records: []) == []
    assert not any(p.exists() for p in owned) and other.exists()
    assert json.loads(C.stats_path(tmp_path, 0).read_text())["recovered"] is True
    assert C.shards_to_extract(tmp_path, [0, 7], lambda records: ["input changed"]) == [0, 7]
    C.discard_extraction(tmp_path, lambda index: index == 7)
    assert [p.name for p in C.list_shards(tmp_path)] == ["shard-00000.h5"]
    assert C.shard_index(C.shard_path(tmp_path, 12)) == 12 and C.shard_index(other) is None
