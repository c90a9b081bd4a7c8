"""Window decoding on real files written by FFmpeg through PyAV: exact frames, audio, schedules, failures."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from avzsl.extractors.decode import DecodeError, Window, get_decoder, select_frame_indices
from avzsl.extractors.decode.audio import decode_audio
from avzsl.extractors.decode.probe import probe_video
from avzsl.extractors.decode.windows import count_windows, frame_offsets, window_starts
from tests.media import (
    audio_tone,
    frame_pattern,
    write_audio_only,
    write_av,
    write_text_as_mp4,
    write_truncated,
    write_vfr,
    write_video_only,
)


def _expected_frames(start_frame: int, fps: float, h: int, w: int) -> np.ndarray:
    return np.stack([frame_pattern(start_frame + int(o), h, w) for o in frame_offsets(fps)])


@pytest.mark.parametrize("fps", [30, 25])
def test_lossless_frames_and_audio_are_exact(tmp_path, fps):
    path = write_av(tmp_path / "v.mp4", duration_s=3.0, fps=fps, size=(32, 24), lossless=True, freq_hz=440)
    windows = list(get_decoder("pyav").iter_windows(path))
    assert [w.index for w in windows] == [0, 1, 2]
    tone = audio_tone(3 * 44100, 44100, 440)[0]
    for w in windows:
        assert isinstance(w, Window) and w.end_s == w.start_s + 1
        assert w.frames.dtype == np.uint8 and w.frames.shape == (30, 24, 32, 3)
        np.testing.assert_array_equal(w.frames, _expected_frames(int(w.start_s * fps), fps, 24, 32))
        assert w.audio.dtype == np.int16 and w.audio.shape == (44100,)
        start = round(w.start_s * 44100)
        np.testing.assert_array_equal(w.audio, tone[start : start + 44100])  # FLAC at 44.1 kHz: bit-exact


def test_avca_schedule_follows_reference_formula(tmp_path):
    path = write_av(tmp_path / "v.mp4", duration_s=4.0, fps=25, lossless=True)
    probe = probe_video(path)
    # N = int(100 / 25) - 1 = 3; start_i = int((100 - 25) * i / 10) frames -> 0, 7, 15
    assert window_starts(4.0, 25.0, 100, "avca") == [0.0, 7 / 25, 15 / 25]
    assert count_windows(probe, "avca") == 3 and count_windows(probe, "clean") == 4
    windows = list(get_decoder("pyav").iter_windows(path, "avca", probe=probe))
    assert [w.start_s for w in windows] == [0.0, 0.28, 0.6]
    for w, first in zip(windows, [0, 7, 15], strict=True):
        np.testing.assert_array_equal(w.frames, _expected_frames(first, 25, 32, 32))
    tone = audio_tone(4 * 44100, 44100)[0]
    np.testing.assert_array_equal(windows[1].audio, tone[12348 : 12348 + 44100])  # round(0.28 * 44100)


def test_schedules_edge_cases():
    assert window_starts(0.9, 30, 27, "clean") == [] and window_starts(1.9, 30, 57, "avca") == []
    assert window_starts(2.9996, 30, 90, "clean") == [0.0, 1.0, 2.0]  # rounded time bases
    assert window_starts(2.0, 30, 60, "avca") == [0.0]
    eleven = window_starts(11.0, 30, 330, "avca")  # the reference formula leaves the second half unsampled
    assert len(eleven) == 10 and eleven[-1] == 4.5
    with pytest.raises(ValueError):
        window_starts(3.0, 30, 90, "bogus")
    import torch

    for fps in (30, 25, 29.97002997, 24, 60, 15, 23.976):
        np.testing.assert_array_equal(frame_offsets(fps), torch.linspace(0, fps - 1, 30).long().numpy())


def test_aac_priming_and_padding_are_handled(tmp_path):
    path = write_av(tmp_path / "v.mp4", duration_s=3.0, size=(32, 32), freq_hz=440)
    wav = decode_audio(str(path))
    assert len(wav) == 3 * 44100  # end padding cropped to the declared duration
    tone = audio_tone(3 * 44100, 44100, 440)[0].astype(np.float64)
    # no priming delay left: the decoded tone lines up with the written one (lag 0 of the cross-correlation)
    seg = wav[44100:46100].astype(np.float64)
    lags = range(-50, 51)
    corr = [np.dot(seg, tone[44100 + lag : 46100 + lag]) for lag in lags]
    assert list(lags)[int(np.argmax(corr))] == 0
    windows = list(get_decoder("pyav").iter_windows(path))
    assert len(windows) == 3
    np.testing.assert_array_equal(windows[2].audio, wav[2 * 44100 :])


def test_resampled_stereo_48k_is_mono_44k(tmp_path):
    path = write_av(tmp_path / "v.mp4", duration_s=2.0, sample_rate=48000, channels=2, freq_hz=1000, lossless=True)
    w = next(iter(get_decoder("pyav").iter_windows(path)))
    spectrum = np.abs(np.fft.rfft(w.audio.astype(np.float64)))
    assert np.argmax(spectrum) == 1000  # 1-s window at 44.1 kHz: bin k = k Hz
    assert 0.9 * 12000 < np.abs(w.audio[1000:-1000]).max() <= 12100


def test_short_audio_uses_last_second(tmp_path):
    path = write_av(tmp_path / "v.mp4", duration_s=3.0, lossless=True, audio_duration_s=1.5)
    windows = list(get_decoder("pyav").iter_windows(path))
    tone = audio_tone(round(1.5 * 44100), 44100)[0]
    np.testing.assert_array_equal(windows[0].audio, tone[:44100])
    for w in windows[1:]:  # past the end: the last second of the track (reference rule)
        np.testing.assert_array_equal(w.audio, tone[-44100:])


def test_rotation_is_applied(tmp_path):
    path = write_av(tmp_path / "v.mp4", duration_s=1.0, size=(48, 32), lossless=True, rotation=90)
    w = next(iter(get_decoder("pyav").iter_windows(path)))
    assert w.frames.shape == (30, 48, 32, 3)
    np.testing.assert_array_equal(w.frames, np.rot90(_expected_frames(0, 30, 32, 48), 1, axes=(1, 2)))


def test_large_frames_are_downscaled_at_decode(tmp_path):
    path = write_av(tmp_path / "v.mp4", duration_s=1.0, size=(256, 144))
    w = next(iter(get_decoder("pyav", max_short_side=72).iter_windows(path)))
    assert w.frames.shape == (30, 72, 128, 3)
    w_native = next(iter(get_decoder("pyav", max_short_side=None).iter_windows(path)))
    assert w_native.frames.shape == (30, 144, 256, 3)


def test_variable_frame_rate_follows_timestamps(tmp_path):
    written = list(range(30)) + list(range(30, 90, 3))  # 30 fps, then a frame every 0.1 s
    path = write_vfr(tmp_path / "vfr.mp4", written, audio_s=3.0)
    probe = probe_video(path)
    windows = list(get_decoder("pyav").iter_windows(path, probe=probe))
    assert len(windows) == 2
    times = np.array(written) / 30
    for w in windows:
        idx = select_frame_indices(times, w.start_s, probe.fps, frame_offsets(probe.fps))
        np.testing.assert_allclose(w.frame_times_s, times[idx], atol=1e-6)
        np.testing.assert_array_equal(w.frames, np.stack([frame_pattern(written[i], 32, 32) for i in idx]))
    # in the 0.1-s part every sampled frame is the one on screen at its target time
    assert set(np.round(windows[1].frame_times_s * 30).astype(int)) <= set(written[30:])


def test_missing_audio_policy(tmp_path):
    path = write_video_only(tmp_path / "v.mp4", duration_s=2.0)
    with pytest.raises(DecodeError, match="no audio"):
        list(get_decoder("pyav").iter_windows(path))
    windows = list(get_decoder("pyav", allow_missing_audio=True).iter_windows(path))
    assert len(windows) == 2 and not windows[0].audio.any()


@pytest.mark.parametrize("kind", ["text", "truncated", "missing", "audio_only"])
def test_bad_files_raise_decode_error_naming_the_file(tmp_path, kind):
    if kind == "text":
        path = write_text_as_mp4(tmp_path / "t.mp4")
    elif kind == "truncated":
        path = write_truncated(write_av(tmp_path / "ok.mp4", duration_s=2.0), tmp_path / "cut.mp4", 0.5)
    elif kind == "missing":
        path = tmp_path / "nope.mp4"
    else:
        path = write_audio_only(tmp_path / "a.m4a", duration_s=2.0)
    for name in ("pyav", "decord"):
        with pytest.raises(DecodeError) as info:
            list(get_decoder(name).iter_windows(path))
        assert str(path) in str(info.value) and info.value.path == str(path)


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown decoder"):
        get_decoder("opencv")
    with pytest.raises(ValueError, match="schedule"):
        next(iter(get_decoder("pyav").iter_windows("x.mp4", schedule="dense")))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fps": 30},
        {"fps": 25},
        {"fps": 30, "rotation": 90},
        {"fps": 30, "rotation": -90},
        {"fps": Fraction(30000, 1001), "lossless": False},
    ],
)
def test_decord_matches_pyav(tmp_path, kwargs):
    kwargs = {"lossless": True} | kwargs
    path = write_av(tmp_path / "v.mp4", duration_s=3.0, size=(64, 32), **kwargs)
    for schedule in ("clean", "avca"):
        a = list(get_decoder("pyav").iter_windows(path, schedule))
        b = list(get_decoder("decord").iter_windows(path, schedule))
        assert len(a) == len(b) > 0
        for wa, wb in zip(a, b, strict=True):
            assert wa.start_s == wb.start_s
            np.testing.assert_array_equal(wa.frames, wb.frames)
            np.testing.assert_array_equal(wa.audio, wb.audio)
            np.testing.assert_allclose(wa.frame_times_s, wb.frame_times_s, atol=1e-4)


def test_decord_refuses_180_degree_rotation(tmp_path):
    path = write_av(tmp_path / "v.mp4", duration_s=1.0, lossless=True, rotation=180)
    with pytest.raises(DecodeError, match="180"):
        list(get_decoder("decord").iter_windows(path))
    assert len(list(get_decoder("pyav").iter_windows(path))) == 1


def test_decord_vfr_matches_pyav(tmp_path):
    path = write_vfr(tmp_path / "vfr.mp4", list(range(30)) + list(range(30, 90, 3)), audio_s=3.0)
    a = list(get_decoder("pyav").iter_windows(path))
    b = list(get_decoder("decord").iter_windows(path))
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa.frames, wb.frames)


def test_cheap_choice_names_match_the_registries() -> None:
    """The CLIs offer extractors/choices.py names (no av/numpy before parsing); they are what the registries take."""
    from avzsl.extractors.choices import DECODERS, SCHEDULES
    from avzsl.extractors.decode import available_decoders
    from avzsl.extractors.decode.windows import window_starts

    assert sorted(DECODERS) == available_decoders()
    for schedule in SCHEDULES:
        assert len(window_starts(3.0, 25.0, 75, schedule)) >= 1
    with pytest.raises(ValueError):
        window_starts(3.0, 25.0, 75, "no-such-schedule")
