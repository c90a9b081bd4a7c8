"""Networks: eq. 1-4 and 6 on hand-set weights and direct tensors; shapes for several D_W."""

import math

import pytest
import torch

from avzsl.model.config import ModelConfig
from avzsl.model.networks import (
    AttentionFusion,
    CoordinateGeneralize,
    MaskGenerator,
    fuse_scores,
    similarity_logits,
)

TINY = {"audio_dim": 6, "visual_dim": 5, "att_dim": 8, "embed_dim": 3, "mask_hidden": 7, "embed_hidden": 9,
        "att_heads": 2, "att_ff": 10, "dropout": 0.0}


def test_similarity_logits_and_softmax_eq3():
    emb = torch.tensor([[1.0, 0.0], [0.5, 2.0]])
    cls = torch.tensor([[1.0, 1.0], [0.0, 1.0], [2.0, 0.0]])
    logits = similarity_logits(emb, cls, tau=2.0)
    # hand: row0 = [1, 0, 2] / 2; row1 = [2.5, 2, 1] / 2
    assert torch.allclose(logits, torch.tensor([[0.5, 0.0, 1.0], [1.25, 1.0, 0.5]]))
    p = logits.softmax(dim=1)
    z = math.exp(0.5) + 1.0 + math.exp(1.0)
    assert p[0].tolist() == pytest.approx([math.exp(0.5) / z, 1.0 / z, math.exp(1.0) / z])


def test_fuse_scores_eq6():
    p_v = torch.tensor([[0.2, 0.8]])
    p_a = torch.tensor([[0.6, 0.4]])
    assert fuse_scores(p_v, p_a, 0.25)[0].tolist() == pytest.approx([0.25 * 0.2 + 0.75 * 0.6, 0.25 * 0.8 + 0.75 * 0.4])


def test_mask_generator_hand_set_weights_eq1():
    gen = MaskGenerator(3, 3)
    with torch.no_grad():
        for layer in (gen.net[0], gen.net[2]):
            layer.weight.copy_(torch.eye(3))
            layer.bias.zero_()
    x = torch.tensor([[-1.0, 0.0, 2.0]])
    # sigmoid(relu(x)) = [sigmoid(0), sigmoid(0), sigmoid(2)]
    assert gen(x)[0].tolist() == pytest.approx([0.5, 0.5, 1.0 / (1.0 + math.exp(-2.0))])


def test_attention_fusion_mixes_modalities():
    torch.manual_seed(0)
    att = AttentionFusion(visual_dim=5, audio_dim=6, att_dim=8, heads=2, ff=10, dropout=0.0).eval()
    v, a = torch.randn(4, 5), torch.randn(4, 6)
    c_v, c_a = att(v, a)
    assert c_v.shape == (4, 8) and c_a.shape == (4, 8)
    # c_v must depend on the audio input (cross-modal attention), not only on v.
    c_v2, _ = att(v, a + 1.0)
    assert not torch.allclose(c_v, c_v2)


@pytest.mark.parametrize("text_dim", [50, 300])
def test_forward_shapes_and_consistency(text_dim):
    torch.manual_seed(0)
    cfg = ModelConfig(text_dim=text_dim, tau=0.5, branch_beta=0.3, **TINY)
    model = CoordinateGeneralize(cfg)
    a, v, w = torch.randn(4, 6), torch.randn(4, 5), torch.randn(7, text_dim)
    out = model(a, v, w)
    assert out.logits_v.shape == out.logits_a.shape == out.p.shape == (4, 7)
    assert out.mask_v.shape == (4, 5) and out.mask_a.shape == (4, 6)
    assert out.c_v.shape == out.c_a.shape == (4, 8)
    assert out.emb_v.shape == out.emb_a.shape == (4, 3) and out.class_embed.shape == (7, 3)
    # eq. 3/4/6 from the model's own intermediate embeddings
    assert torch.allclose(out.logits_v, out.emb_v @ out.class_embed.t() / 0.5)
    assert torch.allclose(out.p_a, (out.emb_a @ out.class_embed.t() / 0.5).softmax(dim=1))
    assert torch.allclose(out.p, 0.3 * out.p_v + 0.7 * out.p_a)
    assert torch.allclose(out.p.sum(dim=1), torch.ones(4))
    assert torch.allclose(model.embed_classes(w), out.class_embed)
    c_a, c_v = model.learned_features(a, v)
    assert torch.allclose(c_a, out.c_a) and torch.allclose(c_v, out.c_v)


def test_masks_applied_before_attention():
    torch.manual_seed(0)
    model = CoordinateGeneralize(ModelConfig(text_dim=4, **TINY))
    # A visual mask of exactly 0 must make c_v, c_a independent of v.
    with torch.no_grad():
        model.mask_v.net[2].weight.zero_()
        model.mask_v.net[2].bias.fill_(-1e4)
    a = torch.randn(2, 6)
    c1 = model.learned_features(a, torch.randn(2, 5))
    c2 = model.learned_features(a, torch.randn(2, 5))
    assert torch.allclose(c1[0], c2[0]) and torch.allclose(c1[1], c2[1])


def test_wrong_text_dim_is_a_clear_error():
    model = CoordinateGeneralize(ModelConfig(text_dim=4, **TINY))
    with pytest.raises(ValueError, match="text_dim"):
        model(torch.randn(2, 6), torch.randn(2, 5), torch.randn(3, 300))
