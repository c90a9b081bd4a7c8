"""Hostile inputs and processes around extraction (issue 10, items 2, 4, 5, 6, 7 and the small ones).

Real videos (PyAV), real extractions (random encoder weights, shard size 1, inline decoding), a real second
process holding the cache. The bad-input corpus (``tests/bad_inputs.py``) carries the media-shaped cases (a name
that is not UTF-8, a timestamp gap, short audio); this file holds the ones about reruns, locks and manifests.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from avzsl.extractors.decode import get_decoder
from avzsl.extractors.decode.probe import probe_video
from avzsl.extractors.stream import WindowStream
from avzsl.pipeline.cache import CacheError, list_shards, load_features, read_shard
from avzsl.pipeline.cli import extract as cli_extract
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.data.video_list import discover_folder, read_manifest
from tests.logtext import refusal_text
from tests.media import write_audio_only, write_av, write_vfr
from tests.test_integrity import dataset_offset, flip_bit


def _args(videos: Path, out: Path, *extra: str) -> list[str]:
    return ["--videos", str(videos), "--out", str(out), "--random-weights", "--shard-size", "1", "--workers", "0",
            "--batch-size", "2", "--no-progress", *extra]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hostile-videos")
    (root / "red").mkdir()
    (root / "blue").mkdir()
    write_av(root / "red" / "a.mp4", duration_s=1.2, size=(64, 48), freq_hz=300)
    write_av(root / "blue" / "b.mp4", duration_s=1.2, size=(64, 48), color=(20, 20, 250), freq_hz=900)
    return root


@pytest.fixture(scope="module")
def reference(videos: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hostile-ref") / "cache"
    assert cli_extract.main(_args(videos, out)) == 0
    return out


def _features(cache: Path) -> dict[str, tuple]:
    return {v.video_id: (v.audio_mean.tobytes(), v.visual_mean.tobytes(), v.audio_seq.tobytes())
            for shard in list_shards(cache) for v in read_shard(shard, with_sequences=True)}


def _manifest(cache: Path) -> dict[str, dict[str, str]]:
    import csv

    with (cache / "manifest.csv").open(newline="", encoding="utf-8") as f:
        return {row["video_id"]: row for row in csv.DictReader(f)}


# ------------------------------------------------------------------------------------------------------------------
# items 1 + 2 + 10: deleted shard, flipped bit in a shard, damaged index ids -> refused, then redone by avzsl-extract


def test_lost_or_damaged_shards_and_index_are_refused_then_redone(reference: Path, videos: Path, tmp_path: Path,
                                                                   capsys) -> None:
    out = tmp_path / "cache"
    shutil.copytree(reference, out)
    shards = list_shards(out)
    shards[0].unlink()
    flip_bit(shards[1], dataset_offset(shards[1], "audio_seq") + 4 * 100, bit=5)
    index = out / "index.h5"
    flip_bit(index, index.read_bytes().index(b"red/a.mp4") + 1)
    with pytest.raises(CacheError, match=r"shard-00000.h5: shard is missing"):
        load_features(out)
    capsys.readouterr()
    assert cli_extract.main(_args(videos, out)) == 0
    captured = capsys.readouterr()
    assert "shard-00001.h5 is truncated or corrupt: extracting it again" in captured.err
    assert "2 extracted now, 0 complete before" in captured.out
    assert _features(out) == _features(reference)
    assert load_features(out).video_ids == load_features(reference).video_ids


# ------------------------------------------------------------------------------------------------------------------
# item 6: an input that changed after extraction is extracted again, and the rerun says so


def test_input_changed_after_extraction_is_extracted_again(reference: Path, videos: Path, tmp_path: Path,
                                                           capsys) -> None:
    folder = tmp_path / "videos"
    shutil.copytree(videos, folder)
    out = tmp_path / "cache"
    shutil.copytree(reference, out)
    capsys.readouterr()
    # A video extracted while still being written: it grows to its full length afterwards.
    write_av(folder / "red" / "a.mp4", duration_s=2.2, size=(64, 48), freq_hz=300)
    assert cli_extract.main(_args(folder, out)) == 0
    captured = capsys.readouterr()
    assert "shard-00001.h5: 1 input video(s) changed since they were extracted (red/a.mp4 (size" in captured.err
    assert "1 extracted now, 1 complete before" in captured.out
    row = _manifest(out)["red/a.mp4"]
    assert row["windows"] == "2" and int(row["size_bytes"]) == (folder / "red" / "a.mp4").stat().st_size


# ------------------------------------------------------------------------------------------------------------------
# items 7 + 8: overlapping shard ownership across world sizes; training while extraction runs

_PAUSED = """
import sys, time
import avzsl.pipeline.extract.shard as extract
def pause(name):
    if name.startswith("extract-shard-"):
        time.sleep(300)  # hold the cache lock mid-shard until the test kills this process
extract.crash_point = pause
from avzsl.pipeline.cli.extract import main
sys.exit(main(sys.argv[1:]))
"""


def test_other_world_size_on_the_same_cache_is_refused_before_the_encoders(
    videos: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    out = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k not in ("AVZSL_KILL_AT", "RANK", "WORLD_SIZE", "LOCAL_RANK")}
    first = subprocess.Popen([sys.executable, "-c", _PAUSED, *_args(videos, out, "--rank", "0", "--world-size", "2")],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (out / ".avzsl.lock.rank0of2").exists():
            assert first.poll() is None, "the first extraction ended before taking its lock"
            assert time.monotonic() < deadline
            time.sleep(0.2)

        def no_encoders(*_, **__):  # noqa: ANN002, ANN003
            raise AssertionError("the encoders were built before the overlapping process was refused")

        monkeypatch.setattr("avzsl.extractors.encoders.registry.build_encoder", no_encoders)
        capsys.readouterr()
        assert cli_extract.main(_args(videos, out)) == 2  # world size 1: owns shard 0 too
        err = capsys.readouterr().err
        assert f"in use by process {first.pid}" in err and "rank 0 of 2" in err and "Traceback" not in err
        # Training on the cache being extracted is refused up front and writes nothing into it.
        before = sorted(p.name for p in out.rglob("*"))
        run = tmp_path / "run"
        args = ["--cache", str(out), "--benchmark", "ucf", "--out", str(run), "--epochs", "1", "--device", "cpu"]
        assert cli_train.main(args) == 2
        assert f"extraction is still running (pid {first.pid}" in refusal_text(run / "train.log")
        assert sorted(p.name for p in out.rglob("*")) == before
        assert first.poll() is None
    finally:
        first.kill()
        first.wait()


# ------------------------------------------------------------------------------------------------------------------
# item 5: windows without a frame of their own are not encoded (decoder level; the corpus checks the manifest flag)


@pytest.mark.parametrize("decoder", ["pyav", "decord"])
def test_timestamp_gap_does_not_multiply_the_windows(tmp_path: Path, decoder: str) -> None:
    if decoder == "decord":
        pytest.importorskip("decord")
    path = write_vfr(tmp_path / "gap.mp4", [*range(36), *range(108000, 108036)], fps=30, size=(64, 48), audio_s=1.2)
    assert path.stat().st_size < 400_000 and probe_video(path).duration_s > 3600
    windows = list(get_decoder(decoder).iter_windows(path))
    assert [(w.index, w.start_s) for w in windows] == [(0, 0.0), (1, 1.0), (3600, 3600.0)]


# ------------------------------------------------------------------------------------------------------------------
# item 4: names that are not UTF-8


def test_non_utf8_names_get_a_reversible_escaped_id(tmp_path: Path) -> None:
    from avzsl.pipeline.core.filenames import escape_name, unescape_name

    name = os.fsdecode(b"caf\xe9.mp4")
    (tmp_path / "red").mkdir()
    write_av(tmp_path / "red" / name, duration_s=1.2, size=(64, 48))
    (entry,) = discover_folder(tmp_path)
    assert entry.video_id == "red/caf\\xe9.mp4" and os.fsencode(entry.path).endswith(b"caf\xe9.mp4")
    assert unescape_name(entry.video_id) == f"red/{name}" and escape_name("vidéo") == "vidéo"
    assert probe_video(entry.path).ok


# ------------------------------------------------------------------------------------------------------------------
# item 10: manifests with a byte-order mark or in UTF-16; decode_error reasons name the file


def test_manifest_with_bom_is_read_and_utf16_is_refused_naming_the_file(videos: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    text = "path,class_name\nred/a.mp4,red\nblue/b.mp4,blue\n"
    manifest.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert [e.video_id for e in read_manifest(manifest, videos)] == ["blue/b.mp4", "red/a.mp4"]
    manifest.write_text(text, encoding="utf-16")
    with pytest.raises(UserError, match=r"m.csv: the manifest is UTF-16 text .*save it as UTF-8"):
        read_manifest(manifest, videos)
    manifest.write_text(text, encoding="utf-16-le")  # no byte-order mark
    with pytest.raises(UserError, match=r"m.csv: "):
        read_manifest(manifest, videos)


def test_decode_error_reason_names_the_file(tmp_path: Path) -> None:
    path = write_av(tmp_path / "swapped.mp4", duration_s=1.2, size=(64, 48))
    probe = probe_video(path)
    write_audio_only(path, duration_s=1.2)  # replaced between probe and decode: no video stream any more
    (item,) = list(WindowStream([(0, str(path), probe)], "pyav", "clean"))
    assert item["status"] == "decode_error" and str(path) in item["reason"], item


def test_finalize_records_the_content_in_cache_json(reference: Path) -> None:
    info = json.loads((reference / "cache.json").read_text())
    assert info["finalized"] is True and info["content"]["videos"] == 2
