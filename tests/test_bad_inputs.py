"""One extraction over a corpus of bad and odd inputs: every file gets its specific status, valid ones features.

The corpus (``tests/bad_inputs.py``) is written once; ``avzsl-extract`` runs once over it in a subprocess (real
encoders, random weights, shard size 4, one decode worker) so its peak memory can be read. Every valid video has
one 1-s window.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from avzsl.extractors.decode import get_decoder
from avzsl.extractors.decode.probe import probe_video
from avzsl.pipeline.cache import list_shards, load_features, read_shard
from avzsl.pipeline.cli import extract as cli_extract
from avzsl.pipeline.data.video_list import read_manifest
from tests.bad_inputs import Corpus, make_corpus, root_reads_everything, write_extras
from tests.media import write_av

# Peak resident memory allowed above the main process for the decode worker (a forked copy of it). A 3840x2160
# window kept at full size would be 30 x 24.9 MB = 746 MB of RGB alone; downsized at decode time it is ~21 MB.
WORKER_EXTRA_RSS_MB = 400
# Peak of a fresh process decoding the 4K video (measured ~190 MB: python, PyAV, numpy and FFmpeg's frame-threaded
# 4K decode buffers); a single full-size window would add 746 MB. VmHWM is read, not ru_maxrss: on Linux a child
# started from a large parent inherits the parent's ru_maxrss across exec.
DECODE_PEAK_MB = 450

_RUN = """
import json, resource, sys
from avzsl.pipeline.cli.extract import main
code = main(sys.argv[2:])
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
usage = {"self_mb": int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
         "children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, "code": code}
open(sys.argv[1], "w").write(json.dumps(usage))
sys.exit(code)
"""


def _args(videos: Path, out: Path, *extra: str) -> list[str]:
    return ["--videos", str(videos), "--out", str(out), "--random-weights", "--shard-size", "4", "--workers", "1",
            "--batch-size", "4", "--no-progress", *extra]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """The corpus without the extra codecs (those are decoded below, and extracted in the slow full run)."""
    return make_corpus(tmp_path_factory.mktemp("bad") / "videos", extras=False)


def _extract_corpus(corpus: Corpus, out: Path) -> tuple[Path, dict, str]:
    usage_file = out.parent / "usage.json"
    env = {k: v for k, v in os.environ.items() if k != "AVZSL_KILL_AT"}
    cmd = [sys.executable, "-c", _RUN, str(usage_file), *_args(corpus.root, out)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return out, json.loads(usage_file.read_text()), done.stderr


@pytest.fixture(scope="module")
def corpus_run(corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    return _extract_corpus(corpus, tmp_path_factory.mktemp("bad-cache") / "cache")


def _records(cache: Path, name: str) -> dict[str, dict[str, str]]:
    with (cache / name).open(newline="", encoding="utf-8") as f:
        return {row["video_id"]: row for row in csv.DictReader(f)}


def test_every_input_is_recorded_with_its_specific_status(corpus: Corpus, corpus_run) -> None:
    _check_statuses(corpus, *corpus_run)


def _check_statuses(corpus: Corpus, cache: Path, _: dict, stderr: str) -> None:
    manifest = _records(cache, "manifest.csv")
    # Every file is recorded once; the symlinked folder red/again -> .. is not followed (no loop, no duplicates).
    assert sorted(manifest) == sorted(corpus.items)
    for vid, item in corpus.items.items():
        row = manifest[vid]
        assert row["status"] == item.expected, (vid, item.note, row["status"], row["reason"])
        assert item.reason.lower() in row["reason"].lower(), (vid, row["reason"])
        if item.expected == "ok":
            assert (item.flag in row["flags"]) if item.flag else not row["flags"], (vid, row["flags"])
    failures = _records(cache, "failures.csv")
    assert {k: v["status"] for k, v in failures.items()} == corpus.expected_failures()
    assert all(v["reason"] for v in failures.values())
    assert "Traceback" not in stderr


def test_valid_inputs_are_extracted_with_finite_features(corpus: Corpus, corpus_run) -> None:
    _check_features(corpus, corpus_run[0])


def _check_features(corpus: Corpus, cache: Path) -> None:
    table = load_features(cache)
    assert sorted(table.video_ids) == corpus.expected_ok()
    assert np.isfinite(table.audio.numpy()).all() and np.isfinite(table.visual.numpy()).all()
    rows = {v.video_id: v for shard in list_shards(cache) for v in read_shard(shard, with_sequences=True)}
    for vid in corpus.expected_ok():
        # One window each (the cut .mkv keeps its real one), except the timing faults.
        assert rows[vid].audio_seq.shape == (corpus.items[vid].windows, 512), vid
        assert rows[vid].class_name == vid.split("/")[0]
    # Same stem in two classes: two videos with their own features.
    assert not np.allclose(rows["dog/same.mp4"].visual_mean, rows["cat/same.mp4"].visual_mean)
    manifest = _records(cache, "manifest.csv")
    assert manifest["blue/uhd.mp4"]["width"] == "3840" and manifest["blue/rotated.mp4"]["windows"] == "1"
    if "red/cut.mkv" in corpus.items:
        # The cut Matroska declares 2.2 s but its frames end before 1 s: the window with no frame is dropped.
        assert float(manifest["red/cut.mkv"]["duration_s"]) > 2 and manifest["red/cut.mkv"]["windows"] == "1"


def test_extra_codecs_decode_to_one_window(tmp_path: Path) -> None:
    """VP9/WebM, MPEG-2/MPG, FFV1/MKV, MPEG-4/AVI and the cut Matroska probe ok and decode to one full window."""
    extras = Corpus(tmp_path / "videos")
    write_extras(extras)
    assert set(extras.items) >= {"green/mpeg2.mpg", "green/lossless.mkv", "green/old.avi", "red/cut.mkv"}
    decoder = get_decoder("pyav")
    for vid in extras.items:
        path = extras.root / vid
        assert probe_video(path).status == "ok", vid
        windows = list(decoder.iter_windows(path))
        assert len(windows) == 1, (vid, len(windows))
        assert windows[0].frames.shape == (30, 48, 64, 3) and np.abs(windows[0].audio).max() > 1000, vid
    if extras.skipped:
        pytest.skip(f"corpus items not available here: {extras.skipped}")


@pytest.mark.slow
def test_whole_corpus_in_one_extraction(tmp_path: Path) -> None:
    """The whole corpus, extra codecs included, in one run (12 encoder forwards)."""
    full = make_corpus(tmp_path / "videos", extras=True)
    run = _extract_corpus(full, tmp_path / "cache")
    _check_statuses(full, *run)
    _check_features(full, run[0])
    assert {"green/mpeg2.mpg", "green/lossless.mkv", "green/old.avi", "red/cut.mkv"} <= set(full.expected_ok())
    if full.skipped:
        pytest.skip(f"corpus items not available here: {full.skipped}")


_DECODE_RSS = """
import json, resource, sys
from avzsl.extractors.decode import get_decoder
windows = [w.frames.shape for w in get_decoder("pyav").iter_windows(sys.argv[1])]
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM:")]
peak = int(hwm[0].split()[1]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"shapes": windows, "peak_mb": peak}))
"""


def test_memory_stays_bounded_on_4k(corpus: Corpus, corpus_run) -> None:
    _, usage, _ = corpus_run
    assert "blue/uhd.mp4" in corpus.items
    # The decode worker (a fork of the main process) never grew past the main process running the encoders.
    assert usage["children_mb"] < usage["self_mb"] + WORKER_EXTRA_RSS_MB, usage
    # Decoding alone, in a fresh process: frames are downsized to a short side of 360 while decoding, so the peak
    # stays far below the 746 MB that one full-size 3840x2160 window of 30 RGB frames would need.
    done = subprocess.run([sys.executable, "-c", _DECODE_RSS, str(corpus.root / "blue" / "uhd.mp4")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["shapes"] == [[30, 360, 640, 3]]
    assert result["peak_mb"] < DECODE_PEAK_MB, result


def test_unreadable_file_without_root_permissions(tmp_path: Path) -> None:
    """chmod 000 stops a normal user; root (tests here) reads it anyway, so probe as ``nobody`` when we are root."""
    folder = Path(tempfile.mkdtemp(prefix="avzsl-perm-"))
    try:
        folder.chmod(0o755)
        locked = write_av(folder / "locked.mp4", duration_s=1.2, size=(64, 48))
        locked.chmod(0)
        hidden = folder / "hidden"
        hidden.mkdir(mode=0o700)
        write_av(hidden / "inside.mp4", duration_s=1.2, size=(64, 48))
        hidden.chmod(0)
        # As root, the probe drops to uid/gid 65534 (nobody) after the imports (the interpreter itself may live in
        # a folder only root can read).
        code = ("import json, os, sys; from avzsl.extractors.decode.probe import probe_video\n"
                "if sys.argv[1] == 'drop': os.setgroups([]); os.setgid(65534); os.setuid(65534)\n"
                "print(json.dumps([(r.status, r.reason) for r in map(probe_video, sys.argv[2:])]))")
        drop = root_reads_everything()
        if drop and os.geteuid() != 0:
            pytest.skip("permissions are bypassed without being root: cannot make a file unreadable")
        cmd = [sys.executable, "-c", code, "drop" if drop else "keep", str(locked), str(hidden / "inside.mp4")]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        (file_status, file_reason), (dir_status, dir_reason) = json.loads(done.stdout)
        assert file_status == "unreadable" and "permission denied" in file_reason.lower()
        assert dir_status == "unreadable" and "permission denied" in dir_reason.lower()
    finally:
        for p in (folder / "hidden", folder / "locked.mp4"):
            if p.exists():
                p.chmod(0o700)
        shutil.rmtree(folder)


def test_class_missing_from_word_vectors_is_refused_before_writing(tmp_path: Path, capsys) -> None:
    videos = tmp_path / "videos"
    for name in ("Qzxqvbnw", "Blorptastic", "red"):
        (videos / name).mkdir(parents=True)
        (videos / name / "x.mp4").write_text("never decoded")
    out = tmp_path / "cache"
    assert cli_extract.main(_args(videos, out)) == 2
    err = capsys.readouterr().err.lower()
    assert "qzxqvbnw" in err and "blorptastic" in err
    # A refused command leaves no output folder behind (it held only logs).
    assert not out.exists() or (not list_shards(out) and not (out / "cache.json").exists())


def test_manifest_row_outside_videos_is_refused_unless_allowed(corpus: Corpus, tmp_path: Path, capsys) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,class_name\nblue/rotated.mp4,blue\n{corpus.outside},blue\n")
    out = tmp_path / "cache"
    assert cli_extract.main(_args(corpus.root, out, "--manifest", str(manifest))) == 2
    err = capsys.readouterr().err
    assert "points outside" in err and "--allow-outside" in err and "Traceback" not in err
    assert not list_shards(out)
    # A relative escape and a symlink inside the folder pointing out are refused the same way.
    link = corpus.root / "blue" / "link.mp4"
    link.symlink_to(corpus.outside)
    try:
        for row in ("../videos-outside/elsewhere.mp4", "blue/link.mp4"):
            manifest.write_text(f"path,class_name\n{row},blue\n")
            with pytest.raises(Exception, match="points outside"):
                read_manifest(manifest, corpus.root)
            assert read_manifest(manifest, corpus.root, allow_outside=True)[0].class_name == "blue"
    finally:
        link.unlink()
    manifest.write_text(f"path,class_name\n{corpus.outside},blue\n")
    (entry,) = read_manifest(manifest, corpus.root, allow_outside=True)
    assert Path(entry.path) == corpus.outside
