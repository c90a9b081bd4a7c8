"""Sanity: a tiny model trained with the full objective on seen classes generalises to unseen classes."""

import pytest
import torch

from avzsl.model.config import LossConfig, ModelConfig
from avzsl.model.losses import compute_losses
from avzsl.model.metrics import gzsl_metrics
from avzsl.model.networks import CoordinateGeneralize
from avzsl.model.scoring import predict_scores


@pytest.fixture
def fast_cpu_math():
    """Unnormalised dot-product logits grow large; softmax then produces denormal floats that slow CPU math ~30x.
    One thread: these ops are tiny, and on a shared machine a second spinning thread costs more than it gives."""
    threads = torch.get_num_threads()
    torch.set_flush_denormal(True)
    torch.set_num_threads(1)
    yield
    torch.set_flush_denormal(False)  # the process default
    torch.set_num_threads(threads)


def _synthetic(num_classes=16, text_dim=8, feat_dim=12, per_class=20, noise=0.3, seed=0):
    """Class vectors w_c and features v = A w_c + noise, a = B w_c + noise (linear maps shared by all classes)."""
    g = torch.Generator().manual_seed(seed)
    w = torch.nn.functional.normalize(torch.randn(num_classes, text_dim, generator=g), dim=1)
    map_v, map_a = torch.randn(text_dim, feat_dim, generator=g), torch.randn(text_dim, feat_dim, generator=g)
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    v = w[labels] @ map_v + noise * torch.randn(len(labels), feat_dim, generator=g)
    a = w[labels] @ map_a + noise * torch.randn(len(labels), feat_dim, generator=g)
    return w, v, a, labels


STEPS = 150


def test_full_objective_transfers_to_unseen_classes(fast_cpu_math):
    torch.manual_seed(0)
    w, v, a, labels = _synthetic()
    num_seen = 12  # classes 0..11 seen, 12..15 unseen: chance ZSL accuracy 1/4
    train = labels < num_seen
    cfg = ModelConfig(audio_dim=12, visual_dim=12, text_dim=8, att_dim=16, embed_dim=8, mask_hidden=16,
                      embed_hidden=32, att_heads=2, att_ff=32, dropout=0.0)
    model = CoordinateGeneralize(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_cfg = LossConfig(mask_ratio=0.25)
    g = torch.Generator().manual_seed(1)
    idx_train = train.nonzero().flatten()
    for _ in range(STEPS):
        batch = idx_train[torch.randint(len(idx_train), (32,), generator=g)]
        opt.zero_grad()
        out = compute_losses(model, a[batch], v[batch], labels[batch], w[:num_seen], loss_cfg)
        out.total.backward()
        opt.step()
    test = ~train
    scores = predict_scores(model, a[test], v[test], w)
    seen = torch.arange(16) < num_seen
    m = gzsl_metrics(scores, labels[test], seen, gamma=0.0)
    assert m.ZSL > 0.6, m.to_dict()  # chance: 0.25
