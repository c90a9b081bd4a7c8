"""Streaming: peak memory while iterating windows does not grow with video length."""

from __future__ import annotations

import tracemalloc

import pytest

from avzsl.extractors.decode import get_decoder
from tests.media import write_av


def _peak_bytes(path, decoder_name: str) -> tuple[int, int]:
    decoder = get_decoder(decoder_name)
    tracemalloc.start()
    try:
        n = 0
        for window in decoder.iter_windows(path):
            n += 1
            del window
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, n


@pytest.mark.parametrize("decoder_name", ["pyav", pytest.param("decord", marks=pytest.mark.slow)])
def test_peak_memory_independent_of_length(tmp_path, decoder_name):
    # Small frames keep this fast; the audio (44.1 kHz AAC) is what would dominate a non-streaming decoder:
    # 60 s of int16 mono is 5.3 MB, far above the expected per-window working set (~0.2 MB here).
    short = write_av(tmp_path / "short.mp4", duration_s=10.0, size=(32, 32), fps=30)
    long = write_av(tmp_path / "long.mp4", duration_s=60.0, size=(32, 32), fps=30)
    peak_short, n_short = _peak_bytes(short, decoder_name)
    peak_long, n_long = _peak_bytes(long, decoder_name)
    assert (n_short, n_long) == (10, 60)
    assert peak_long < 1.3 * peak_short + 256 * 1024, (peak_short, peak_long)
    assert peak_long < 2_000_000  # well below the 5.3 MB of the whole decoded audio track


@pytest.mark.slow
def test_4k_frames_are_bounded(tmp_path):
    path = write_av(tmp_path / "uhd.mp4", duration_s=1.0, size=(3840, 2160), fps=30, moving=False)
    decoder = get_decoder("pyav")  # default max_short_side=360
    tracemalloc.start()
    try:
        windows = list(decoder.iter_windows(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert windows[0].frames.shape == (30, 360, 640, 3)
    # one full-size RGB frame is 24.9 MB and a full-size window 746 MB; the bounded window is 20.7 MB
    assert peak < 40_000_000, peak
