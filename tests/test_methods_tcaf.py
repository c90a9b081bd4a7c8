"""TCAF on per-window sequences: cross-modal attention mask, padding invariance, learning, refusal without sequences."""

from __future__ import annotations

import pytest
import torch

from avzsl.model.registry import FeatureBatch, get_method
from avzsl.model.tcaf import cross_modal_mask
from tests.methods_toy import accuracy, build, one_thread, toy_problem, train_steps  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"encoder_hidden": 16, "decoder_hidden": 16, "dim": 16, "depth": 1, "heads": 2, "head_dim": 8,
         "mlp_dim": 16, "embed_dim": 8, "dim_out": 8, "dropout": 0.0, "encoder_dropout": 0.1, "audio_scale": 1.0}


def _with_sequences(batch: FeatureBatch, seed: int = 0, max_t: int = 4) -> FeatureBatch:
    """Per-window features around each video's features; 2..max_t real windows, zero-padded to max_t."""
    g = torch.Generator().manual_seed(seed)
    n = len(batch)
    lengths = torch.randint(2, max_t + 1, (n,), generator=g)
    mask = torch.arange(max_t)[None, :] < lengths[:, None]
    a = (batch.audio[:, None] + 0.1 * torch.randn(n, max_t, batch.audio.shape[1], generator=g)) * mask[..., None]
    v = (batch.visual[:, None] + 0.1 * torch.randn(n, max_t, batch.visual.shape[1], generator=g)) * mask[..., None]
    return FeatureBatch(batch.audio, batch.visual, a, v, mask)


def test_cross_modal_mask_blocks_within_modality_and_padding() -> None:
    valid = torch.tensor([[True, False]])  # T = 2: tokens [cls, a1, a2, v1, v2]
    m = cross_modal_mask(valid)[0]
    expected = torch.tensor([
        [1, 1, 0, 1, 0],  # cls -> every valid token
        [1, 0, 0, 1, 0],  # a1 -> cls, v1 (not itself, not the padded window)
        [0, 0, 0, 0, 0],  # padded query row
        [1, 1, 0, 0, 0],  # v1 -> cls, a1
        [0, 0, 0, 0, 0],
    ], dtype=torch.bool)
    assert torch.equal(m, expected)


def test_scores_ignore_padded_windows() -> None:
    batch, labels, emb = toy_problem(per_class=4)
    seq = _with_sequences(batch)
    method = build("tcaf", **SMALL)
    method.eval()
    with torch.no_grad():
        base = method.scores(seq, emb)
        # Garbage in the padded windows must not change anything (BatchNorm in eval mode, masked attention).
        noisy = FeatureBatch(seq.audio, seq.visual, seq.audio_seq + 5.0 * (~seq.seq_mask)[..., None],
                             seq.visual_seq, seq.seq_mask)
        torch.testing.assert_close(method.scores(noisy, emb), base)
    assert base.shape == (len(labels), emb.shape[0])


def test_tcaf_learns_and_needs_sequences() -> None:
    assert get_method("tcaf").needs_sequences
    batch, labels, emb = toy_problem()
    seq = _with_sequences(batch)
    method = build("tcaf", **SMALL)
    losses = train_steps(method, seq, labels, emb, steps=50, lr=3e-3)
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    assert accuracy(method, seq, labels, emb) > 0.6
    with pytest.raises(ValueError, match="per-window sequences"):
        method.scores(batch, emb)
