"""Scoring of any registered method (and of the bare network): higher-is-better (N, C) scores in chunks."""

from __future__ import annotations

import torch

from avzsl.model.networks import CoordinateGeneralize
from avzsl.model.registry import FeatureBatch, Method


def method_scores(method: Method, batch: FeatureBatch, class_emb: torch.Tensor, batch_size: int = 1024,
                  calibration: bool = False) -> torch.Tensor:
    """Scores ``(N, C)`` of N videos for C candidate classes, eval mode, no gradients, ``batch_size`` per chunk.

    Args:
        method: a trained method.
        batch: the N videos.
        class_emb: ``(C, D_W)`` candidate class embeddings (column order of the result).
        batch_size: videos per chunk (bounds memory).
        calibration: return :meth:`Method.calibration_scores` (what calibrated stacking shifts) instead of
            :meth:`Method.scores`; both rank classes the same way.

    The method's previous train/eval mode is restored afterwards.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    n = len(batch)
    if batch.visual.shape[0] != n:
        raise ValueError(f"audio and visual must have the same number of rows, got {n} and {batch.visual.shape[0]}")
    fn = method.calibration_scores if calibration else method.scores
    was_training = method.training
    method.eval()
    try:
        with torch.no_grad():
            chunks = [fn(batch.index(slice(i, i + batch_size)), class_emb) for i in range(0, n, batch_size)]
    finally:
        method.train(was_training)
    if not chunks:
        return batch.audio.new_zeros((0, class_emb.shape[0]))
    return torch.cat(chunks, dim=0)


def predict_scores(model: CoordinateGeneralize | Method, audio: torch.Tensor, visual: torch.Tensor,
                   class_emb: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Scores of N samples (audio (N, D_A), visual (N, D_V)) against C candidate classes -> (N, C).

    For the bare :class:`CoordinateGeneralize` network: the fused probabilities p of eq. 6 (rows sum to 1). For a
    registered :class:`Method` loaded from a run: the scores the run's calibration gamma applies to (the method's
    ``calibration_scores`` when the run was calibrated on them, attribute ``calibrated_on == "calibration_scores"``
    set by ``load_run_model``; else its ``scores``). Prediction = argmax over columns (eq. 12) either way.
    """
    if isinstance(model, Method):
        calibration = getattr(model, "calibrated_on", "scores") == "calibration_scores"
        return method_scores(model, FeatureBatch(audio, visual), class_emb, batch_size, calibration=calibration)
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if audio.shape[0] != visual.shape[0]:
        raise ValueError(f"audio and visual must have the same number of rows, got {audio.shape[0]} and "
                         f"{visual.shape[0]}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            class_embed = model.embed_classes(class_emb)
            chunks = [model.forward_embedded(audio[i:i + batch_size], visual[i:i + batch_size], class_embed).p
                      for i in range(0, audio.shape[0], batch_size)]
    finally:
        model.train(was_training)
    if not chunks:
        return audio.new_zeros((0, class_emb.shape[0]))
    return torch.cat(chunks, dim=0)
