"""SeLaVi input transforms: decoded windows -> encoder input tensors (avgzsl_conventions.md §4).

Video, in the order of the reference (facebookresearch/selavi ``datasets/video_transforms.py: clip_augmentation``
as called by ExplainableML/AVCA-GZSL ``selavi_feature_extraction/get_clusters.py`` with ``center_crop=True``,
``min_scale = max_scale = crop_size = 112``):

1. uint8 -> float32, ``/ 255``, ``(x - 0.45) / 0.225`` (same mean/std for R, G, B);
2. (T, H, W, C) -> (T, C, H, W);
3. short side to 112 with ``F.interpolate(mode="bilinear", align_corners=False)`` (no antialias) to the size
   ``(112, floor(long / short * 112))``; skipped when the short side already is 112;
4. center crop 112 x 112 at offsets ``ceil((H - 112) / 2)``, ``ceil((W - 112) / 2)``;
5. (T, C, H, W) -> (C, T, H, W).

Normalising before resizing is the reference order; bilinear interpolation is affine so the other order would give
the same values up to float rounding, but we keep the reference's.

Audio: ``logfbank`` of the int16-valued second (44100 samples) -> (99, 257) -> transpose -> (1, 257, 99) ->
float32 -> ``(x - 1.93) / 17.89``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from avzsl.extractors.encoders.fbank import logfbank

CROP = 112
VIDEO_MEAN = 0.45
VIDEO_STD = 0.225
AUDIO_MEAN = 1.93
AUDIO_STD = 17.89


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))


def resized_size(height: int, width: int, size: int = CROP) -> tuple[int, int]:
    """(H', W') after the reference's short-side resize (long side floored)."""
    if width <= height:
        return int(math.floor(height / width * size)), size
    return size, int(math.floor(width / height * size))


def video_windows_tensor(frames: np.ndarray | torch.Tensor, size: int = CROP) -> torch.Tensor:
    """Batch of windows to R(2+1)D input.

    Args:
        frames: uint8 (B, T, H, W, 3) RGB, numpy or tensor (any device).
        size: output spatial size (112 for SeLaVi).

    Returns:
        float32 (B, 3, T, size, size) on the input's device.
    """
    x = _as_tensor(frames)
    if x.dim() != 5 or x.shape[-1] != 3:
        raise ValueError(f"frames must be (B, T, H, W, 3), got {tuple(x.shape)}")
    b, t, h, w, _ = x.shape
    x = x.float().div_(255.0).sub_(VIDEO_MEAN).div_(VIDEO_STD)
    x = x.reshape(b * t, h, w, 3).permute(0, 3, 1, 2)  # (B*T, 3, H, W)
    if min(h, w) != size:
        new_h, new_w = resized_size(h, w, size)
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False)
        h, w = new_h, new_w
    y0 = math.ceil((h - size) / 2)
    x0 = math.ceil((w - size) / 2)
    x = x[:, :, y0 : y0 + size, x0 : x0 + size]
    return x.reshape(b, t, 3, size, size).permute(0, 2, 1, 3, 4).contiguous()


def video_window_tensor(frames: np.ndarray | torch.Tensor, size: int = CROP) -> torch.Tensor:
    """One window: uint8 (T, H, W, 3) -> float32 (3, T, size, size). See ``video_windows_tensor``."""
    x = _as_tensor(frames)
    if x.dim() != 4:
        raise ValueError(f"frames must be (T, H, W, 3), got {tuple(x.shape)}")
    return video_windows_tensor(x.unsqueeze(0), size)[0]


def audio_windows_tensor(audio: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Batch of 1-s int16 audio windows to the audio encoder's input.

    Args:
        audio: (B, 44100) int16-valued samples (int16 or float dtype), numpy or tensor (any device).

    Returns:
        float32 (B, 1, 257, 99) on the input's device.
    """
    x = _as_tensor(audio)
    if x.dim() != 2:
        raise ValueError(f"audio must be (B, L), got {tuple(x.shape)}")
    spec = logfbank(x, samplerate=44100, winlen=0.02, winstep=0.01, nfilt=257, nfft=1024)  # (B, 99, 257) float64
    spec = spec.float().transpose(1, 2).unsqueeze(1)  # reference casts to float32 before normalising
    return (spec - AUDIO_MEAN) / AUDIO_STD


def audio_window_tensor(audio: np.ndarray | torch.Tensor) -> torch.Tensor:
    """One window: (44100,) int16 -> float32 (1, 257, 99). See ``audio_windows_tensor``."""
    x = _as_tensor(audio)
    if x.dim() != 1:
        raise ValueError(f"audio must be (L,), got {tuple(x.shape)}")
    return audio_windows_tensor(x.unsqueeze(0))[0]
