"""Reliability round 3, names and media (issue 20 section 5; docs/reliability.md "Round 3: names and media").

- class names: one rule at every entry point (class folders, manifests, split folders, avzsl-predict candidates,
  avzsl-splits --unseen): NFC, no control/invisible characters or outer white space, no class spelled two ways;
- concatenated MPEG-TS files (timestamps jump back) are flagged ``discontinuous`` with a reason instead of half
  decoded; a 33-bit timestamp wrap is decoded whole;
- very long frames (16000x16) are cropped to 4:1 at decode time: memory stays that of an ordinary video;
- ``avzsl-synth --windows N`` streams its videos shard by shard and refuses what the disk cannot hold.

Real media (PyAV), real HDF5 caches, and real subprocesses where peak memory is measured.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import av
import numpy as np
import pytest

from avzsl.extractors.decode import DEFAULT_MAX_ASPECT, DecodeError, crop_to_aspect, get_decoder
from avzsl.extractors.decode.probe import probe_video
from avzsl.pipeline.cache import ClassTable, VideoFeatures, load_features, read_cache_info, read_shard, write_cache
from avzsl.pipeline.cli import extract as cli_extract
from avzsl.pipeline.cli import splits as cli_splits
from avzsl.pipeline.cli import synth as cli_synth
from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.data.class_names import class_key
from avzsl.pipeline.data.splits import STAGE_SPLITS, SplitError, load_splits, write_split_folder
from avzsl.pipeline.data.video_list import discover_folder, read_manifest
from avzsl.pipeline.predict.ranking import parse_class_list, read_class_file
from avzsl.pipeline.predict.records import PredictError
from avzsl.pipeline.synth import benchmark
from tests.media import write_av

NFC = unicodedata.normalize("NFC", "Café")
NFD = unicodedata.normalize("NFD", "Café")
assert NFC != NFD and NFC.encode() != NFD.encode()


def _tree(root: Path, *folders: str) -> Path:
    """``root/<folder>/v.mp4`` for each folder (a tiny real video each)."""
    for k, folder in enumerate(folders):
        (root / folder).mkdir(parents=True)
        write_av(root / folder / f"v{k}.mp4", duration_s=1.0, size=(16, 16))
    return root


# --------------------------------------------------------------------------------------------------------------
# class names


def test_nfc_and_nfd_class_folders_are_refused_naming_both(tmp_path: Path) -> None:
    root = _tree(tmp_path / "videos", NFC, NFD)
    with pytest.raises(UserError) as info:
        discover_folder(root)
    message = str(info.value)
    # Both folders are named, told apart by their escapes, and the rule is said.
    assert "Caf\\xe9" in message and "Cafe\\u0301" in message and "NFC" in message and "same class" in message


def test_a_single_nfd_class_folder_becomes_an_nfc_class(tmp_path: Path) -> None:
    root = _tree(tmp_path / "videos", NFD, "Dog")
    entries = discover_folder(root)
    assert sorted({e.class_name for e in entries}) == sorted([NFC, "Dog"])
    nfd_entry = next(e for e in entries if e.class_name == NFC)
    assert nfd_entry.video_id.startswith(NFD) and Path(nfd_entry.path).is_file()  # the id stays the file's path


@pytest.mark.parametrize(
    ("folder", "words"),
    [("Do\x0bg", "U+000B"), (" Dog", "white space"), ("Dog ", "white space"), ("Dog\u200b", "U+200B")],
)
def test_class_folders_the_rule_refuses_are_named_before_extraction(tmp_path: Path, folder: str, words: str) -> None:
    root = _tree(tmp_path / "videos", folder, "cat")
    with pytest.raises(UserError) as info:
        discover_folder(root)
    where = str(root / folder)
    assert words in str(info.value) and (where if where.isprintable() else ascii(where)) in str(info.value)
    # The command line: one line, exit 2, nothing written.
    out = tmp_path / "cache"
    code = cli_extract.main(["--videos", str(root), "--out", str(out), "--random-weights", "--no-progress"])
    assert code == 2 and not (out / "cache.json").exists()


def test_two_folders_differing_in_case_are_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "videos", "Dog", "dog")
    with pytest.raises(UserError, match="same class"):
        discover_folder(root)


def test_folders_without_videos_are_no_classes(tmp_path: Path) -> None:
    root = _tree(tmp_path / "videos", "Dog")
    (root / " notes").mkdir()
    (root / " notes" / "readme.txt").write_text("not a class")
    assert {e.class_name for e in discover_folder(root)} == {"Dog"}


def test_manifest_labels_follow_the_rule(tmp_path: Path) -> None:
    root = _tree(tmp_path / "videos", "a", "b", "c")
    manifest = tmp_path / "m.csv"

    def write(*labels: str) -> Path:
        with manifest.open("w", newline="", encoding="utf-8") as f:
            rows = zip(["a/v0.mp4", "b/v1.mp4", "c/v2.mp4"], labels, strict=True)
            csv.writer(f).writerows([("path", "class_name"), *rows])
        return manifest

    entries = read_manifest(write(NFD, NFC, "dog"), root)
    assert [e.class_name for e in entries] == [NFC, NFC, "dog"]  # NFC and NFD spellings: one class
    with pytest.raises(UserError, match=r"m\.csv:4 spells the class 'Dog', .*m\.csv:3 spells it 'dog'"):
        read_manifest(write("cat", "dog", "Dog"), root)
    with pytest.raises(UserError, match=r"m\.csv:3: class name .* U\+0007"):
        read_manifest(write("cat", "d\x07og", "cow"), root)


def _split_folder(folder: Path, classes: dict[str, list[str]], labels: dict[str, str] | None = None) -> Path:
    membership = {s: [("v.mp4", (labels or {}).get(s, classes[s][0]))] for s in STAGE_SPLITS}
    write_split_folder(folder, classes, membership)
    return folder


def test_split_files_follow_the_rule(tmp_path: Path) -> None:
    base = {s: ["dog"] for s in STAGE_SPLITS}
    splits = load_splits(_split_folder(tmp_path / "nfd", {**base, "stage_2_test_unseen": [NFD]}))
    assert splits["stage_2_test_unseen"].classes == (NFC,) and splits["stage_2_test_unseen"].videos[0][1] == NFC
    # A class listed twice in one list, in two spellings.
    with pytest.raises(SplitError, match=r"stage_2_train\.txt: line 2 \('Dog'\) and line 1 \('dog'\)"):
        load_splits(_split_folder(tmp_path / "twice", {**base, "stage_2_train": ["dog", "Dog"]}))
    # A label with a control character inside names the file and the video.
    with pytest.raises(SplitError, match=r"stage_1_train\.csv: label of 'v\.mp4': class name 'd\\x08og'"):
        load_splits(_split_folder(tmp_path / "ctl", base, {"stage_1_train": "d\x08og"}))


def test_built_in_benchmark_splits_pass_the_rule() -> None:
    from avzsl.data_manifests import benchmark_splits

    for name in ("ucf", "activitynet", "vggsound"):
        assert len(benchmark_splits(name)["stage_2_train"].classes) > 10


def test_predict_candidates_follow_the_rule(tmp_path: Path) -> None:
    assert parse_class_list(f" dog , {NFD},cat") == ["dog", NFC, "cat"]
    with pytest.raises(PredictError, match=r"--classes: item 2 \('Cafe\\u0301'\) and item 1 \('Caf\\xe9'\)"):
        parse_class_list(f"{NFC},{NFD}")
    with pytest.raises(PredictError, match="same class"):
        parse_class_list("Dog,dog")
    path = tmp_path / "classes.txt"
    path.write_text("# candidates\ndog\nca\x0bt\n", encoding="utf-8")
    with pytest.raises(PredictError, match=r"classes\.txt: line 3: class name 'ca\\x0bt' holds .* U\+000B"):
        read_class_file(path)
    path.write_text(f"\ufeffdog\r\n{NFD}\r\n", encoding="utf-8")  # byte-order mark and CRLF: fine
    assert read_class_file(path) == ["dog", NFC]


def _small_cache(folder: Path, classes: list[str]) -> Path:
    videos = [VideoFeatures(f"{c}/{k}.mp4", c, np.full(2, k, np.float32), np.ones(2, np.float32))
              for c in classes for k in range(4)]
    table = ClassTable(classes, classes, np.eye(len(classes), dtype=np.float32), {"embedder": "test"})
    write_cache(folder, videos, table, {"encoder": {"name": "test"}, "weights": {"sha256": "test"}}, 100)
    return folder


def test_avzsl_splits_names_follow_the_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = _small_cache(tmp_path / "cache", [NFC, "dog", "cat", "cow", "owl"])
    out = tmp_path / "splits"
    assert cli_splits.main(["--cache", str(cache), "--out", str(out), "--unseen", NFD, "--val-unseen", "DOG"]) == 0
    assert (out / "stage_2_test_unseen.txt").read_text(encoding="utf-8") == f"{NFC}\n"
    assert (out / "stage_1_val_unseen.txt").read_text(encoding="utf-8") == "dog\n"
    code = cli_splits.main(["--cache", str(cache), "--out", str(tmp_path / "s2"), "--unseen", f"cat,{NFD},{NFC}"])
    assert code == 2 and "same class" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------------------
# media: timestamps that jump back, and a 33-bit wrap


def _concatenated_ts(folder: Path) -> Path:
    """Two 3-s MPEG-TS files joined byte for byte: the second one's timestamps start at 0 again."""
    first = write_av(folder / "first.ts", duration_s=3.0, size=(32, 32))
    second = write_av(folder / "second.ts", duration_s=3.0, size=(32, 32), color=(10, 200, 10))
    joined = folder / "joined.ts"
    joined.write_bytes(first.read_bytes() + second.read_bytes())
    first.unlink()
    second.unlink()
    return joined


def _wrapped_ts(folder: Path, seconds_before_wrap: float = 2.0, duration_s: float = 4.0) -> Path:
    """A ``duration_s`` MPEG-TS whose 33-bit 90 kHz timestamps wrap to 0 ``seconds_before_wrap`` in."""
    src = write_av(folder / "src.mp4", duration_s=duration_s, size=(32, 32))
    out_path = folder / "wrapped.ts"
    offset_s = (2**33 - seconds_before_wrap * 90000) / 90000
    with av.open(str(src)) as inp, av.open(str(out_path), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in inp.streams}
        for packet in inp.demux():
            if packet.dts is None:
                continue
            shift = round(offset_s / packet.time_base)
            packet.pts += shift
            packet.dts += shift
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
    src.unlink()
    with av.open(str(out_path)) as check:  # the muxer really wrote wrapped timestamps
        raw = [p.pts for p in check.demux(video=0) if p.size]
    assert min(raw) < 0 < max(raw)  # FFmpeg unwraps them around the wrap: before it negative, after it positive
    return out_path


def test_concatenated_ts_is_flagged_not_half_decoded(tmp_path: Path) -> None:
    joined = _concatenated_ts(tmp_path)
    probe = probe_video(joined)
    assert probe.status == "discontinuous" and not probe.ok
    assert str(joined) in probe.reason and "jump back" in probe.reason and "concatenated" in probe.reason
    with pytest.raises(DecodeError, match="jump back"):
        list(get_decoder("pyav").iter_windows(joined))


def test_a_single_ts_and_b_frames_at_a_low_rate_are_not_flagged(tmp_path: Path) -> None:
    single = write_av(tmp_path / "one.ts", duration_s=3.0, size=(32, 32))
    assert probe_video(single).status == "ok"
    assert len(list(get_decoder("pyav").iter_windows(single))) == 3
    # B-frames at 1 fps: presentation timestamps step back by seconds, decode timestamps never do.
    for suffix in (".ts", ".mkv"):
        path = tmp_path / f"bframes{suffix}"
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=1)
            stream.width = stream.height = 64
            stream.pix_fmt = "yuv420p"
            stream.options = {"preset": "medium", "bf": "3"}
            for i in range(12):
                frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 20 * i, np.uint8), format="rgb24")
                frame.pts = i
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        assert probe_video(path).status == "no_audio", suffix  # no false "discontinuous"


def test_a_33_bit_timestamp_wrap_is_decoded_whole(tmp_path: Path) -> None:
    wrapped = _wrapped_ts(tmp_path)
    probe = probe_video(wrapped)
    assert probe.status == "ok" and abs(probe.duration_s - 4.0) < 0.05
    windows = list(get_decoder("pyav").iter_windows(wrapped))
    assert [w.start_s for w in windows] == [0.0, 1.0, 2.0, 3.0]
    assert windows[-1].frame_times_s[-1] > 3.9  # frames after the wrap are there, on one clock


@pytest.mark.slow
def test_extraction_records_the_jump_as_a_failure_and_keeps_the_wrap(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    (videos / "a").mkdir(parents=True)
    _concatenated_ts(videos / "a")
    _wrapped_ts(videos / "a")
    out = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k != "AVZSL_KILL_AT"}
    cmd = [sys.executable, "-m", "avzsl.pipeline.cli.extract", "--videos", str(videos), "--out", str(out),
           "--random-weights", "--workers", "0", "--no-progress"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    with (out / "failures.csv").open(newline="", encoding="utf-8") as f:
        failures = {row["video_id"]: row for row in csv.DictReader(f)}
    assert failures["a/joined.ts"]["status"] == "discontinuous" and "jump back" in failures["a/joined.ts"]["reason"]
    rows = {v.video_id: v for v in read_shard(next((out / "shards").glob("*.h5")), with_sequences=True)}
    assert set(rows) == {"a/wrapped.ts"} and rows["a/wrapped.ts"].audio_seq.shape[0] == 4


# --------------------------------------------------------------------------------------------------------------
# media: very long frames

_DECODE_PEAK = """
import json, sys
from avzsl.extractors.decode import get_decoder
from avzsl.extractors.encoders.transforms import video_window_tensor
shapes = []
for window in get_decoder("pyav").iter_windows(sys.argv[1]):
    shapes.append(list(window.frames.shape))
    tensor = video_window_tensor(window.frames)  # what extraction feeds the visual encoder
    shapes.append(list(tensor.shape))
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
print(json.dumps({"peak_mb": int(hwm[0].split()[1]) / 1024, "shapes": shapes}))
"""


def _decode_peak(path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "AVZSL_KILL_AT"}
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run([sys.executable, "-c", _DECODE_PEAK, str(path)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_very_long_frames_cost_what_an_ordinary_video_costs(tmp_path: Path) -> None:
    ordinary = _decode_peak(write_av(tmp_path / "ordinary.mp4", duration_s=1.0, size=(640, 360), moving=False))
    long = _decode_peak(write_av(tmp_path / "long.mp4", duration_s=1.0, size=(4000, 16), moving=False))
    # 4000x16 is cropped to its centre 64x16 (4:1); unbounded, the transform scales it to 112x28000 (1.1 GB).
    assert long["shapes"] == [[30, 16, 64, 3], [3, 30, 112, 112]]
    assert ordinary["shapes"] == [[30, 360, 640, 3], [3, 30, 112, 112]]
    assert long["peak_mb"] < ordinary["peak_mb"] + 64, (long, ordinary)


def test_ordinary_frames_are_not_cropped(tmp_path: Path) -> None:
    for width, height in ((640, 360), (360, 640), (840, 360), (1280, 360), (1440, 360)):  # 16:9 .. 4:1, portrait
        frame = np.zeros((height, width, 3), np.uint8)
        assert crop_to_aspect(frame, DEFAULT_MAX_ASPECT) is frame
    tall = np.arange(2000 * 10 * 3, dtype=np.int64).reshape(2000, 10, 3)
    assert np.array_equal(crop_to_aspect(tall, 4.0), tall[980:1020])
    # A 32:9 video decodes to the very same frames with and without the bound.
    path = write_av(tmp_path / "ultrawide.mp4", duration_s=1.0, size=(256, 72), lossless=True)
    bounded = next(iter(get_decoder("pyav").iter_windows(path)))
    whole = next(iter(get_decoder("pyav", max_aspect=None).iter_windows(path)))
    assert bounded.frames.shape == (30, 72, 256, 3) and np.array_equal(bounded.frames, whole.frames)


# --------------------------------------------------------------------------------------------------------------
# avzsl-synth --windows N

_SYNTH_PEAK = """
import json, sys
from pathlib import Path
from avzsl.pipeline.synth import benchmark
benchmark.SHARD_SEQUENCE_BYTES = 8 * 2**20
spec = benchmark.BenchmarkSynthSpec(benchmark="ucf", feature_dim=64, latent_dim=16, hidden_dim=32, windows=50)
def rss(key):
    return int([l for l in open("/proc/self/status") if l.startswith(key)][0].split()[1]) / 1024
before = rss("VmRSS:")
count = benchmark.write_benchmark_cache(Path(sys.argv[1]), spec)
print(json.dumps({"before_mb": before, "peak_mb": rss("VmHWM:"), "videos": count}))
"""


def test_synth_windows_stream_to_the_shards(tmp_path: Path) -> None:
    # 6816 videos x ~50 windows x 2 x 64 float32: 177 MB of per-window features, never all in memory (measured:
    # +444 MB over the imports when they are all generated first, as before; +50 MB streamed in 8-MB shards).
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    out = tmp_path / "cache"
    done = subprocess.run([sys.executable, "-c", _SYNTH_PEAK, str(out)], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    usage = json.loads(done.stdout.strip().splitlines()[-1])
    assert usage["videos"] == 6816
    assert usage["peak_mb"] - usage["before_mb"] < 150, usage
    assert len(list((out / "shards").glob("*.h5"))) > 10 and read_cache_info(out)["finalized"]


def test_streamed_cache_equals_the_in_memory_generation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = benchmark.BenchmarkSynthSpec(benchmark="ucf", feature_dim=16, latent_dim=8, hidden_dim=16, windows=3)
    monkeypatch.setattr(benchmark, "SHARD_SEQUENCE_BYTES", 2**20)  # several shards
    benchmark.write_benchmark_cache(tmp_path / "cache", spec)
    assert len(list((tmp_path / "cache" / "shards").glob("*.h5"))) > 2
    stored = {v.video_id: v for p in (tmp_path / "cache" / "shards").glob("*.h5")
              for v in read_shard(p, with_sequences=True)}
    memory = benchmark.generate_benchmark(spec)
    assert len(stored) == len(memory.videos)
    for video in memory.videos[:: 97]:
        np.testing.assert_array_equal(stored[video.video_id].audio_seq, video.audio_seq)
        np.testing.assert_array_equal(stored[video.video_id].visual_mean, video.visual_mean)
    table = load_features(tmp_path / "cache")
    assert table.audio.shape == (6816, 16)


def test_synth_refuses_windows_the_disk_cannot_hold(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # The free space is reported as 1 GB (a real full disk is not made here): 500 windows need about 14 GB for UCF.
    usage = benchmark.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(benchmark.shutil, "disk_usage", lambda _: usage._replace(free=10**9))
    out = tmp_path / "cache"
    assert cli_synth.main(["--benchmark", "ucf", "--windows", "500", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--windows 500" in err and "GB" in err and "lower --windows" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_class_key_is_nfc_and_case_folded() -> None:
    assert class_key(NFD) == class_key(NFC.upper()) == class_key("café")
    assert class_key("Straße") == class_key("STRASSE")
