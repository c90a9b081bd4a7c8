"""Torch log filterbank against python_speech_features.logfbank (the SeLaVi/AVCA reference) on real-like audio."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from python_speech_features import logfbank as ref_logfbank
from python_speech_features.base import get_filterbanks

from avzsl.extractors.encoders.fbank import logfbank, mel_filterbank, num_frames

SR = 44100


def _signals() -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    noise = rng.integers(-32768, 32767, SR)
    tone = 12000 * np.sin(2 * np.pi * 440 * t)
    mix = rng.normal(0, 300, SR) + 8000 * np.sin(2 * np.pi * 3000 * t)
    return np.stack([noise, tone, mix, np.zeros(SR)]).astype(np.int16)


def _ref(sig: np.ndarray, **kw) -> np.ndarray:
    params = dict(winlen=0.02, winstep=0.01, nfilt=257, nfft=1024) | kw
    return ref_logfbank(sig, SR, **params)


def test_matches_reference_float64():
    sigs = _signals()
    out = logfbank(torch.from_numpy(sigs))
    assert out.shape == (4, 99, 257) and out.dtype == torch.float64
    for i, sig in enumerate(sigs):
        np.testing.assert_allclose(out[i].numpy(), _ref(sig), rtol=0, atol=1e-9)


def test_empty_filters_give_log_eps_like_reference():
    fb = mel_filterbank(257, 1024, SR)
    np.testing.assert_array_equal(fb, get_filterbanks(257, 1024, SR, 0, SR / 2))
    empty = fb.sum(axis=1) == 0
    assert empty.sum() > 0  # nfilt=257 on nfft=1024 leaves empty filters
    out = logfbank(torch.from_numpy(_signals()[:1]))[0]
    assert torch.all(out[:, torch.from_numpy(empty)] == np.log(np.finfo(float).eps))


def test_unbatched_short_and_other_params():
    sig = _signals()[2]
    np.testing.assert_allclose(logfbank(torch.from_numpy(sig)).numpy(), _ref(sig), atol=1e-9)
    short = sig[:500]  # shorter than one frame: one zero-padded frame
    assert num_frames(500) == 1
    np.testing.assert_allclose(logfbank(torch.from_numpy(short)).numpy(), _ref(short), atol=1e-9)
    odd = sig[:12345]  # last frame zero-padded
    np.testing.assert_allclose(logfbank(torch.from_numpy(odd)).numpy(), _ref(odd), atol=1e-9)
    # SeLaVi's other spectrogram type: 40 filters
    np.testing.assert_allclose(logfbank(torch.from_numpy(sig), nfilt=40).numpy(), _ref(sig, nfilt=40), atol=1e-9)


def test_float32_is_close():
    sigs = _signals()
    out = logfbank(torch.from_numpy(sigs), dtype=torch.float32)
    assert out.dtype == torch.float32
    for i, sig in enumerate(sigs):
        np.testing.assert_allclose(out[i].double().numpy(), _ref(sig), atol=0.05)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_reference():
    sigs = _signals()
    out = logfbank(torch.from_numpy(sigs).cuda())
    assert out.is_cuda
    for i, sig in enumerate(sigs):
        np.testing.assert_allclose(out[i].cpu().numpy(), _ref(sig), atol=1e-9)
