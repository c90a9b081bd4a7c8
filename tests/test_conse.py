"""ConSE (model/conse.py): the formula on a hand-made bridge, and the bridge of the packaged encoders on real pictures.

The packaged EfficientNet-Lite0's ImageNet head is applied to the stored 1280-d feature (it must be exactly the
head's input), its 1000 label names come from torchvision's bundled metadata, and the label names are embedded with
the bundled GloVe vectors; all offline.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from avzsl.extractors.encoders.label_heads import (
    LABELLED_ENCODERS,
    attach_label_bridge,
    embed_labels,
    imagenet_categories,
    label_heads,
)
from avzsl.extractors.encoders.packaged import EffnetFrameTransform
from avzsl.extractors.encoders.registry import build_encoder
from avzsl.extractors.text.class_names import ClassNameEmbedder
from avzsl.model.registry import FeatureBatch, FeatureDims, build_method, get_method
from avzsl.pipeline.synth.real_media import load_picture

DIMS = FeatureDims(audio_dim=2, visual_dim=3, text_dim=2)


def _tiny_conse(top_t: int = 2):
    """4 labels over a 3-d feature; label vectors on the unit circle; label 3 has no word vector."""
    method = build_method("conse", DIMS, {"top_t": top_t, "visual_labels": 4})
    weight = np.array([[4.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0], [4.0, 4.0, 4.0]], np.float32)
    label_emb = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], np.float32)
    method.set_bridge("visual", weight, np.zeros(4, np.float32), label_emb, np.array([True, True, True, False]))
    return method, weight, label_emb


def test_registered_frozen_and_refuses_scoring_without_a_bridge() -> None:
    entry = get_method("conse")
    assert entry.trainable is False and not entry.needs_sequences
    method = build_method("conse", DIMS, {"visual_labels": 4})
    assert list(method.parameters()) == [] and method.modalities() == ["visual"]
    batch = FeatureBatch(torch.zeros(1, 2), torch.zeros(1, 3))
    with pytest.raises(RuntimeError, match="no label bridge"):
        method.scores(batch, torch.eye(2))
    with pytest.raises(RuntimeError, match="frozen"):
        method.training_loss(batch, torch.zeros(1), torch.eye(2))
    with pytest.raises(ValueError, match="shape"):
        method.set_bridge("visual", np.zeros((5, 3)), np.zeros(5), np.zeros((5, 2)), np.ones(5, bool))
    with pytest.raises(ValueError, match="without audio labels"):
        method.set_bridge("audio", np.zeros((4, 2)), np.zeros(4), np.zeros((4, 2)), np.ones(4, bool))
    with pytest.raises(ValueError, match="audio_weight > 0"):
        build_method("conse", DIMS, {"audio_weight": 0.5})
    with pytest.raises(ValueError, match="top_t"):
        build_method("conse", DIMS, {"top_t": 0})


def test_scores_are_the_cosine_of_the_top_t_label_mixture() -> None:
    method, weight, label_emb = _tiny_conse(top_t=2)
    visual = torch.tensor([[1.0, 0.2, 0.0], [0.0, 0.1, 1.0], [0.3, 0.3, 0.3]])
    classes = torch.tensor([[1.0, 1.0], [-1.0, 0.5], [0.0, -1.0]])
    got = method.scores(FeatureBatch(torch.zeros(3, 2), visual), classes)
    # By hand: softmax over all 4 labels, label 3 (no word vector) never chosen, the 2 largest kept, mixed, cosine.
    q = torch.softmax(visual @ torch.from_numpy(weight).T, dim=1)
    q[:, 3] = 0
    expected = []
    for row in q:
        top = row.topk(2)
        mix = (top.values[:, None] * torch.from_numpy(label_emb)[top.indices]).sum(0) / top.values.sum()
        expected.append(F.normalize(mix, dim=0) @ F.normalize(classes, dim=1).T)
    torch.testing.assert_close(got, torch.stack(expected))
    # T = 1 is the nearest-label rule: the first video's top label is label 0 -> class 0 (cosine 1/sqrt 2).
    one, _, _ = _tiny_conse(top_t=1)
    assert one.scores(FeatureBatch(torch.zeros(1, 2), visual[:1]), classes).argmax().item() == 0


def test_bridge_is_saved_with_the_state_dict() -> None:
    method, _, _ = _tiny_conse()
    again = build_method("conse", DIMS, {"top_t": 2, "visual_labels": 4})
    again.load_state_dict(method.state_dict())
    batch = FeatureBatch(torch.zeros(2, 2), torch.randn(2, 3, generator=torch.Generator().manual_seed(0)))
    torch.testing.assert_close(again.scores(batch, torch.eye(2)), method.scores(batch, torch.eye(2)))


def test_imagenet_names_and_label_vectors_are_offline() -> None:
    names = imagenet_categories()
    assert len(names) == 1000 and names[340] == "zebra" and names[889] == "violin" and names[8] == "hen"
    embedder = ClassNameEmbedder(None)
    vectors, ok = embed_labels(embedder, ["zebra", "great white shark", "qxzvblorp", "maillot", "maillot"])
    assert ok.tolist() == [True, True, False, True, True]
    np.testing.assert_allclose(np.linalg.norm(vectors[ok], axis=1), 1.0, rtol=1e-5)
    assert not vectors[2].any()
    np.testing.assert_allclose(vectors[0], embedder.embed(["zebra"]).embeddings[0], rtol=1e-6)


@pytest.fixture(scope="module")
def packaged():
    return build_encoder("effnet_lite0_aisfx")


def test_head_applies_to_the_stored_feature_and_conse_names_real_pictures(packaged) -> None:
    """The stored 1280-d feature is exactly the head's input: head(feature) = the network's own logits; ConSE
    through those logits and GloVe ranks each picture's own name first among names ImageNet does not all have."""
    assert "effnet_lite0_aisfx" in LABELLED_ENCODERS
    head = label_heads(packaged)["visual"]
    assert head.weight.shape == (1000, 1280) and head.bias.shape == (1000,)
    pictures = ["zebra", "violin", "kettle", "hen", "elephant"]
    frames = []
    for name in pictures:
        rgba = load_picture(name).astype(np.float32)
        alpha = rgba[..., 3:] / 255.0
        frames.append((rgba[..., :3] * alpha + 255.0 * (1 - alpha)).astype(np.uint8)[None])
    batch = torch.stack([EffnetFrameTransform()(f) for f in frames])
    features = packaged.encode_visual(batch)
    with torch.inference_mode():
        logits = packaged.visual(batch)
    torch.testing.assert_close(features @ torch.from_numpy(head.weight).T + torch.from_numpy(head.bias), logits,
                               rtol=1e-4, atol=1e-3)
    embedder = ClassNameEmbedder(None)
    dims = FeatureDims(audio_dim=512, visual_dim=1280, text_dim=embedder.dim)
    method = build_method("conse", dims)
    assert attach_label_bridge(method, packaged, embedder)["visual"] > 950
    candidates = ["zebra", "violin", "kettle", "hen", "elephant", "dog", "piano", "truck"]
    scores = method.scores(FeatureBatch(torch.zeros(len(pictures), 512), features),
                           torch.from_numpy(embedder.embed(candidates).embeddings))
    assert [candidates[i] for i in scores.argmax(dim=1).tolist()] == pictures


def test_an_encoder_set_without_named_heads_is_refused() -> None:
    selavi = build_encoder("selavi_vggsound", None, random_weights=True)
    assert label_heads(selavi) == {}
    method = build_method("conse", FeatureDims(audio_dim=512, visual_dim=512, text_dim=50))
    with pytest.raises(ValueError, match="no visual classifier head"):
        attach_label_bridge(method, selavi, ClassNameEmbedder(None))
