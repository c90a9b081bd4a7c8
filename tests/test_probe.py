"""Probe: metadata of real files written by FFmpeg (PyAV) and the status of broken ones."""

from __future__ import annotations

from fractions import Fraction

import pytest

from avzsl.extractors.decode.probe import STATUSES, ProbeResult, probe_many, probe_video
from tests.media import write_audio_only, write_av, write_text_as_mp4, write_truncated, write_video_only


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("probe")
    files = {
        "ok": write_av(d / "ok.mp4", duration_s=2.0, fps=25, size=(48, 32), sample_rate=48000),
        "ok_mkv": write_av(d / "ok.mkv", duration_s=2.0, fps=30, lossless=True),
        "rot": write_av(d / "rot.mp4", duration_s=1.2, lossless=True, rotation=-90),
        "no_audio": write_video_only(d / "noaudio.mp4", duration_s=1.5),
        "no_video": write_audio_only(d / "audio.m4a", duration_s=1.5),
        "too_short": write_av(d / "short.mp4", duration_s=0.5),
        "text": write_text_as_mp4(d / "text.mp4"),
        "empty": d / "empty.mp4",
        "missing": d / "missing.mp4",
        "dir": d,
    }
    files["empty"].write_bytes(b"")
    files["truncated"] = write_truncated(files["ok"], d / "truncated.mp4", 0.4)
    return files


def test_ok_file_metadata(media):
    r = probe_video(media["ok"])
    assert r.status == "ok" and r.ok and r.reason == ""
    assert r.duration_s == pytest.approx(2.0, abs=1e-3)
    assert r.fps == 25.0 and r.frame_count == 50
    assert (r.width, r.height) == (48, 32)
    assert r.has_video and r.has_audio
    assert r.video_codec == "h264" and r.audio_codec == "aac" and r.audio_sample_rate == 48000
    assert r.rotation == 0
    d = r.to_dict()
    assert set(d) >= {"path", "duration_s", "fps", "frame_count", "width", "height", "has_video", "has_audio",
                      "audio_sample_rate", "video_codec", "audio_codec", "rotation", "status", "reason"}


def test_mkv_without_frame_count_is_counted(media):
    r = probe_video(media["ok_mkv"])
    assert r.status == "ok"
    assert r.frame_count == 60  # Matroska stores no count: counted by demuxing
    assert r.duration_s == pytest.approx(2.0, abs=0.05)
    assert r.audio_codec == "flac"


def test_rotation_is_read(media):
    assert probe_video(media["rot"]).rotation == -90


@pytest.mark.parametrize(
    ("key", "status"),
    [
        ("no_audio", "no_audio"),
        ("no_video", "no_video"),
        ("too_short", "too_short"),
        ("text", "unreadable"),
        ("truncated", "unreadable"),
        ("empty", "empty_file"),
        ("missing", "not_a_file"),
        ("dir", "not_a_file"),
    ],
)
def test_bad_files_get_a_status_and_reason(media, key, status):
    r = probe_video(media[key])
    assert r.status == status, r
    assert status in STATUSES
    assert str(media[key]) in r.reason  # the reason names the file


def test_min_duration_is_configurable(media):
    assert probe_video(media["too_short"], min_duration_s=0.4).status == "ok"
    assert probe_video(media["ok"], min_duration_s=2.5).status == "too_short"


@pytest.mark.parametrize(("n_jobs", "backend"), [(1, "threading"), (2, "threading"), (2, "loky")])
def test_probe_many_keeps_order(media, n_jobs, backend):
    keys = ["ok", "text", "no_audio", "missing", "too_short"]
    results = probe_many([media[k] for k in keys], n_jobs=n_jobs, backend=backend)
    assert all(isinstance(r, ProbeResult) for r in results)
    assert [r.status for r in results] == ["ok", "unreadable", "no_audio", "not_a_file", "too_short"]


def test_ntsc_rate(tmp_path):
    r = probe_video(write_av(tmp_path / "ntsc.mp4", duration_s=1.5, fps=Fraction(30000, 1001)))
    assert r.fps == pytest.approx(29.97, abs=1e-2)
    assert r.frame_count == 45
