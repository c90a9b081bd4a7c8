"""SeLaVi input transforms: shapes, normalisation, resize/crop geometry, batch consistency, audio pipeline."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from python_speech_features import logfbank as ref_logfbank

from avzsl.extractors.encoders.transforms import (
    audio_window_tensor,
    audio_windows_tensor,
    resized_size,
    video_window_tensor,
    video_windows_tensor,
)


def _selavi_reference(frames: np.ndarray) -> torch.Tensor:
    """Literal transcription of selavi clip_augmentation (center crop, scale 112) for one (T, H, W, 3) clip."""
    x = torch.as_tensor(frames).float() / 255.0
    x = (x - torch.tensor([0.45] * 3)) / torch.tensor([0.225] * 3)
    x = x.permute(0, 3, 1, 2).contiguous()
    h, w = x.shape[2], x.shape[3]
    if not ((w <= h and w == 112) or (h <= w and h == 112)):
        nh, nw = 112, 112
        if w < h:
            nh = int(math.floor(h / w * 112))
        else:
            nw = int(math.floor(w / h * 112))
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
    h, w = x.shape[2], x.shape[3]
    y0, x0 = int(math.ceil((h - 112) / 2)), int(math.ceil((w - 112) / 2))
    return x[:, :, y0 : y0 + 112, x0 : x0 + 112].permute(1, 0, 2, 3)


@pytest.mark.parametrize("hw", [(32, 32), (48, 64), (240, 320), (200, 150), (112, 150)])
def test_video_matches_reference(hw):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (4, *hw, 3), dtype=np.uint8)
    out = video_window_tensor(frames)
    assert out.shape == (3, 4, 112, 112) and out.dtype == torch.float32
    torch.testing.assert_close(out, _selavi_reference(frames), rtol=0, atol=1e-5)


def test_constant_frame_and_exact_crop():
    frames = np.full((2, 112, 150, 3), 200, np.uint8)
    out = video_window_tensor(frames)
    torch.testing.assert_close(out, torch.full_like(out, (200 / 255 - 0.45) / 0.225))
    # short side already 112: no resize, center crop at x offset ceil(38 / 2) = 19
    ramp = np.broadcast_to((np.arange(150) % 256).astype(np.uint8)[None, None, :, None], (1, 112, 150, 3))
    out = video_window_tensor(np.ascontiguousarray(ramp))
    expected = (torch.arange(19, 131).float() / 255 - 0.45) / 0.225
    torch.testing.assert_close(out[0, 0, 0], expected)
    assert resized_size(240, 320) == (112, 149) and resized_size(320, 240) == (149, 112)


def test_batched_equals_single():
    rng = np.random.default_rng(2)
    frames = rng.integers(0, 256, (3, 5, 40, 60, 3), dtype=np.uint8)
    batch = video_windows_tensor(torch.from_numpy(frames))
    assert batch.shape == (3, 3, 5, 112, 112)
    for i in range(3):
        torch.testing.assert_close(batch[i], video_window_tensor(frames[i]))
    with pytest.raises(ValueError):
        video_windows_tensor(frames[0])


def test_audio_matches_reference_recipe():
    rng = np.random.default_rng(3)
    t = np.arange(44100) / 44100
    wavs = np.stack([rng.integers(-20000, 20000, 44100), 9000 * np.sin(2 * np.pi * 1000 * t)]).astype(np.int16)
    batch = audio_windows_tensor(wavs)
    assert batch.shape == (2, 1, 257, 99) and batch.dtype == torch.float32
    for i, wav in enumerate(wavs):
        spec = ref_logfbank(wav, 44100, winlen=0.02, winstep=0.01, nfilt=257, nfft=1024).astype("float32")
        ref = (torch.as_tensor(spec.T[None]) - 1.93) / 17.89
        torch.testing.assert_close(batch[i], ref, rtol=0, atol=1e-5)
        torch.testing.assert_close(audio_window_tensor(wav), batch[i])


def test_selavi_spec_matches_the_constants_the_pipeline_uses() -> None:
    # The spec recorded in every cache must describe what the transforms and decoders actually do.
    from avzsl.extractors.decode import windows
    from avzsl.extractors.encoders import transforms
    from avzsl.extractors.encoders.selavi import SELAVI_VGGSOUND

    spec = SELAVI_VGGSOUND

    assert (spec.pixel_mean, spec.pixel_std) == (transforms.VIDEO_MEAN, transforms.VIDEO_STD)
    assert (spec.audio_mean, spec.audio_std) == (transforms.AUDIO_MEAN, transforms.AUDIO_STD)
    assert spec.frame_size == spec.resize_short_side == transforms.CROP
    assert spec.frames_per_window == windows.FRAMES_PER_WINDOW
    assert spec.window_seconds == windows.WINDOW_S and spec.audio_sample_rate == windows.AUDIO_RATE
    assert transforms.audio_window_tensor(np.zeros(44100, np.int16)).shape == (1, spec.fbank_filters, spec.fbank_frames)
