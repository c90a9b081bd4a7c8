"""The frozen zero-shot method: registration, the fused-cosine formula, slices of the class embedding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from avzsl.model.registry import FeatureBatch, FeatureDims, build_method, get_method


def _unit(*shape: int, seed: int) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_registered_frozen_without_parameters() -> None:
    entry = get_method("zero_shot")
    assert entry.trainable is False and not entry.needs_sequences
    method = build_method("zero_shot", FeatureDims(audio_dim=4, visual_dim=6, text_dim=10))
    assert list(method.parameters()) == []
    with pytest.raises(RuntimeError, match="frozen"):
        method.training_loss(FeatureBatch(torch.zeros(1, 4), torch.zeros(1, 6)), torch.zeros(1), torch.zeros(3, 10))


def test_scores_are_the_fused_cosines_of_the_two_text_slices() -> None:
    dims = FeatureDims(audio_dim=4, visual_dim=6, text_dim=10)
    clip_text, clap_text = _unit(5, 6, seed=1), _unit(5, 4, seed=2)
    class_emb = torch.cat([clip_text, clap_text], dim=1)
    visual, audio = 3.0 * _unit(7, 6, seed=3), 2.0 * _unit(7, 4, seed=4)  # norms do not matter: cosine
    batch = FeatureBatch(audio, visual)
    method = build_method("zero_shot", dims, {"audio_weight": 0.25})
    expected = 0.75 * F.normalize(visual, dim=-1) @ clip_text.T + 0.25 * F.normalize(audio, dim=-1) @ clap_text.T
    torch.testing.assert_close(method.scores(batch, class_emb), expected)
    # A video that looks like class 2 and sounds like class 2 ranks it first with either modality alone.
    batch = FeatureBatch(clap_text[2:3], clip_text[2:3])
    for w in (0.0, 0.5, 1.0):
        assert build_method("zero_shot", dims, {"audio_weight": w}).scores(batch, class_emb).argmax().item() == 2


def test_offsets_select_other_layouts_and_too_narrow_embeddings_are_refused() -> None:
    dims = FeatureDims(audio_dim=4, visual_dim=6, text_dim=12)
    clip_text, clap_text = _unit(3, 6, seed=5), _unit(3, 4, seed=6)
    class_emb = torch.cat([torch.zeros(3, 2), clap_text, clip_text], dim=1)  # [pad | CLAP | CLIP]
    method = build_method("zero_shot", dims, {"clip_text_offset": 6, "clap_text_offset": 2, "audio_weight": 0.5})
    batch = FeatureBatch(clap_text, clip_text)
    torch.testing.assert_close(method.scores(batch, class_emb).diagonal(), torch.ones(3))
    with pytest.raises(ValueError, match="text-tower class embeddings"):
        build_method("zero_shot", FeatureDims(audio_dim=512, visual_dim=512, text_dim=300))
    with pytest.raises(ValueError, match="audio_weight"):
        build_method("zero_shot", dims, {"audio_weight": 1.5})
