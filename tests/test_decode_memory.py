"""Streaming: peak memory while iterating windows does not grow with video length, and extraction holds at most
batch + workers x prefetch decoded windows at once."""

from __future__ import annotations

import multiprocessing
import time
import tracemalloc

import numpy as np
import pytest
import torch

from avzsl.extractors.decode import get_decoder
from avzsl.extractors.stream import (
    CPU_BATCH_SIZE,
    CUDA_BATCH_SIZE,
    PREFETCH_WINDOWS,
    default_batch_size,
    encode_window_stream,
    max_windows_in_flight,
)
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


# Decoded windows counted in the decode workers (forked: the shared counter is inherited) and in the main process.
_DECODED = multiprocessing.get_context("fork").Value("i", 0)


def _counting_video_fn(frames: np.ndarray) -> torch.Tensor:
    with _DECODED.get_lock():
        _DECODED.value += 1
    return torch.zeros(2)  # a stand-in encoder input; the count is what matters


def _audio_fn(audio: np.ndarray) -> torch.Tensor:
    return torch.zeros(2)


def _wait_until_decoding_stops(quiet_s: float = 0.25, limit_s: float = 5.0) -> None:
    """Give the workers time to decode all they are allowed to: until the count is unchanged for ``quiet_s``."""
    last, since = -1, time.monotonic()
    deadline = since + limit_s
    while time.monotonic() < deadline:
        value = _DECODED.value
        if value != last:
            last, since = value, time.monotonic()
        elif time.monotonic() - since > quiet_s:
            return
        time.sleep(0.02)


class _SlowEncoders:
    """A slow consumer: the decode workers get as far ahead as the bound lets them."""

    def __init__(self) -> None:
        self.encoded = 0
        self.most_in_flight = 0

    def window_transforms(self) -> tuple:
        return _counting_video_fn, _audio_fn

    def encode_visual(self, v: torch.Tensor) -> torch.Tensor:
        _wait_until_decoding_stops()
        # Decoded but not yet encoded, this batch included.
        self.most_in_flight = max(self.most_in_flight, _DECODED.value - self.encoded)
        self.encoded += len(v)
        return torch.zeros(len(v), 3)

    def encode_audio(self, a: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(a), 3)


@pytest.mark.parametrize("workers", [0, 2])
def test_decoded_windows_in_flight_never_exceed_the_bound(tmp_path, workers):
    # 3 videos x 4 windows and a batch of 2: unbounded decoding would have all 12 decoded before the 2nd batch.
    todo = []
    for k in range(3):
        path = write_av(tmp_path / f"{k}.mp4", duration_s=4.0, size=(32, 32), fps=30)
        todo.append((k, str(path), None))
    with _DECODED.get_lock():
        _DECODED.value = 0
    encoders = _SlowEncoders()
    store, expected = encode_window_stream(todo, encoders, "pyav", "clean", workers=workers, batch_size=2)
    assert expected == {0: 4, 1: 4, 2: 4} and sum(len(v) for v in store.values()) == 12
    bound = max_windows_in_flight(2, workers)
    assert bound == 2 + workers * PREFETCH_WINDOWS
    assert 2 <= encoders.most_in_flight <= bound, (encoders.most_in_flight, bound)


def test_default_batch_size_is_smaller_on_cpu() -> None:
    # On CPU each SeLaVi window costs ~200 MiB of activations (docs/memory.md): 4 by default there, 16 on CUDA.
    assert default_batch_size("cpu") == CPU_BATCH_SIZE == 4
    assert default_batch_size("cuda:1") == default_batch_size(torch.device("cuda")) == CUDA_BATCH_SIZE == 16
