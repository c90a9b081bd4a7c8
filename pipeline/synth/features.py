"""Synthetic feature caches for tests and benchmarks.

Audio and visual features are class-conditional functions of the class-name vectors, so zero-shot transfer is
learnable: a video of class c has ``a = tanh(A w_c) * s_a + noise`` and ``v = tanh(V w_c) * s_v + noise`` with
fixed random maps ``A, V`` shared by all classes. A model that learns to invert the maps on seen classes can
recognise unseen ones from their class vectors alone.

With ``windows`` > 0 every video also gets per-window features (between ``windows // 2`` and ``windows +
windows // 2`` windows, at least 1): each window is the clean signal plus its own noise, and the video's mean
features are the mean over its windows, as in an extracted cache (TCAF tests).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from avzsl.pipeline.cache import ClassTable, VideoFeatures, write_cache
from avzsl.pipeline.data.splits import write_protocol_splits

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyntheticSpec:
    """Size of a synthetic dataset.

    Attributes:
        num_seen / num_val_unseen / num_test_unseen: class counts of the protocol groups.
        videos_per_class: videos of every class.
        audio_dim / visual_dim / text_dim: feature sizes.
        noise: standard deviation of the per-video noise (relative to a unit signal).
        shard_size: videos per shard.
        seed: seed of everything.
        windows: 0 = no per-window sequences; T > 0 = about T windows per video (see the module docstring).
    """

    num_seen: int = 8
    num_val_unseen: int = 4
    num_test_unseen: int = 4
    videos_per_class: int = 20
    audio_dim: int = 32
    visual_dim: int = 32
    text_dim: int = 16
    noise: float = 0.3
    shard_size: int = 1000
    seed: int = 0
    windows: int = 0


def make_synthetic_cache(cache_dir: Path, splits_dir: Path, spec: SyntheticSpec = SyntheticSpec()) -> None:
    """Write a complete synthetic cache (shards, class table, index) and a matching split folder."""
    rng = np.random.default_rng(spec.seed)
    total_classes = spec.num_seen + spec.num_val_unseen + spec.num_test_unseen
    names = [f"class{i:03d}" for i in range(total_classes)]
    words = rng.standard_normal((total_classes, spec.text_dim)).astype(np.float32)
    words /= np.linalg.norm(words, axis=1, keepdims=True)
    maps = {
        "audio": rng.standard_normal((spec.text_dim, spec.audio_dim)).astype(np.float32),
        "visual": rng.standard_normal((spec.text_dim, spec.visual_dim)).astype(np.float32),
    }
    videos: list[VideoFeatures] = []
    class_videos: dict[str, list[str]] = {}
    for c, name in enumerate(names):
        for k in range(spec.videos_per_class):
            vid = f"{name}/video_{k:04d}.mp4"
            if spec.windows > 0:
                videos.append(_windowed_video(vid, name, words[c], maps, spec, rng))
            else:
                feats = {}
                for modality, matrix in maps.items():
                    clean = np.tanh(words[c] @ matrix)
                    feats[modality] = (clean + spec.noise * rng.standard_normal(clean.shape)).astype(np.float32)
                videos.append(VideoFeatures(vid, name, feats["audio"], feats["visual"]))
            class_videos.setdefault(name, []).append(vid)
    info = {
        "encoder": {"name": "synthetic", "spec": {"audio_dim": spec.audio_dim, "visual_dim": spec.visual_dim}},
        "weights": {"sha256": "synthetic"},
        "code_version": "synthetic",
        "synthetic": spec.__dict__,
    }
    table = ClassTable(names, names, words, {"embedder": "synthetic", "dim": spec.text_dim})
    write_cache(cache_dir, videos, table, info, spec.shard_size)
    seen = names[: spec.num_seen]
    val_unseen = names[spec.num_seen : spec.num_seen + spec.num_val_unseen]
    test_unseen = names[spec.num_seen + spec.num_val_unseen :]
    write_protocol_splits(splits_dir, class_videos, seen, val_unseen, test_unseen, seed=spec.seed)
    _logger.info("synthetic cache: %d videos of %d classes in %s", len(videos), total_classes, cache_dir)


def _windowed_video(vid: str, name: str, word: np.ndarray, maps: dict[str, np.ndarray], spec: SyntheticSpec,
                    rng: np.random.Generator) -> VideoFeatures:
    """One video with ``T`` windows: ``(T, D)`` per-window features per modality, their means and window times."""
    t = int(rng.integers(max(1, spec.windows // 2), spec.windows + spec.windows // 2 + 1))
    seqs = {}
    for modality, matrix in maps.items():
        clean = np.tanh(word @ matrix)
        seqs[modality] = (clean[None] + spec.noise * rng.standard_normal((t, clean.shape[0]))).astype(np.float32)
    window_sec = np.stack([np.arange(t), np.arange(1, t + 1)], axis=1).astype(np.float32)
    return VideoFeatures(vid, name, seqs["audio"].mean(0), seqs["visual"].mean(0), seqs["audio"], seqs["visual"],
                         window_sec)
