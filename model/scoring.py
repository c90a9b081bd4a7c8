"""Zero-shot scoring (eq. 12): the fused similarity score p of every sample for every candidate class."""

from __future__ import annotations

import torch

from avzsl.model.networks import CoordinateGeneralize


def predict_scores(model: CoordinateGeneralize, audio: torch.Tensor, visual: torch.Tensor, class_emb: torch.Tensor,
                   batch_size: int = 1024) -> torch.Tensor:
    """Score p (eq. 6) of N samples against C candidate classes, in eval mode and without gradients.

    The class embeddings f_w(w) are computed once; samples are processed in chunks of ``batch_size`` to bound
    memory. The model's previous train/eval mode is restored afterwards.

    Args:
        model: trained network.
        audio: (N, D_A) audio features.
        visual: (N, D_V) visual features.
        class_emb: (C, D_W) class-name embeddings of the candidate classes (column order of the result).
        batch_size: samples per chunk.

    Returns:
        (N, C) float tensor of scores in [0, 1]; each row sums to 1. Prediction = argmax over columns (eq. 12).
    """
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
