"""AVCA specifics: the reference's optimiser, plateau schedule (checkpointable), frozen position embeddings, scoring."""

from __future__ import annotations

import pytest
import torch

from avzsl.model.registry import FeatureBatch
from tests.methods_toy import build, one_thread, toy_problem, train_steps  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"encoder_hidden": 32, "decoder_hidden": 32, "joint_dim": 24, "heads": 2, "head_dim": 12, "mlp_dim": 16,
         "dim_out": 16}


def test_optimizer_is_adam_with_weight_decay_and_position_embeddings_stay_fixed() -> None:
    batch, labels, emb = toy_problem()
    method = build("avca", **SMALL)
    start = method.pos_emb.detach().clone()
    opt = method.configure_optimizer(1e-3)
    assert isinstance(opt, torch.optim.Adam) and opt.param_groups[0]["weight_decay"] == 1e-5
    assert all(p is not method.pos_emb for g in opt.param_groups for p in g["params"])
    train_steps(method, batch, labels, emb, steps=3)
    # The reference leaves pos_emb1D out of its optimiser: it keeps its random initial value.
    assert torch.equal(method.pos_emb, start)
    trained = build("avca", train_pos_emb=True, **SMALL)
    start = trained.pos_emb.detach().clone()
    train_steps(trained, batch, labels, emb, steps=3)
    assert not torch.equal(trained.pos_emb, start)


def test_plateau_schedule_on_validation_h_and_its_checkpoint_state() -> None:
    method = build("avca", **SMALL)
    opt = method.configure_optimizer(1e-3)
    hs = [0.30, 0.31, 0.30, 0.30, 0.30]  # best at epoch 2, then 3 epochs without improvement: patience not used up
    for epoch, h in enumerate(hs, start=1):
        method.epoch_end(opt, epoch, {"H": h})
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-3)
    state = method.extra_state_for_checkpoint()
    method.epoch_end(opt, 6, {"H": 0.29})  # 4th bad epoch > patience 3: lr x 0.1
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4)
    # Stage 2 has no validation: the schedule is left alone.
    method.epoch_end(opt, 7, None)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4)

    # Resume: the saved state may be loaded before or after configure_optimizer; both continue identically.
    for load_first in (True, False):
        resumed = build("avca", **SMALL)
        if load_first:
            resumed.load_extra_state(state)
            opt2 = resumed.configure_optimizer(1e-3)
        else:
            opt2 = resumed.configure_optimizer(1e-3)
            resumed.load_extra_state(state)
        resumed.epoch_end(opt2, 6, {"H": 0.29})
        assert opt2.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_training_loss_terms_follow_the_switches() -> None:
    batch, labels, emb = toy_problem()
    full = build("avca", **SMALL)
    full.train()
    torch.manual_seed(1)
    out = full.training_loss(batch.index(slice(0, 40)), labels[:40], emb)
    assert set(out.terms) == {"l_rec", "l_ct", "l_w", "l_t", "l_reg"}
    torch.testing.assert_close(out.total.detach(), sum(out.terms.values()))
    bare = build("avca", additional_triplets=False, reg_loss=False, **SMALL)
    bare.train()
    out = bare.training_loss(batch.index(slice(0, 40)), labels[:40], emb)
    assert set(out.terms) == {"l_rec", "l_ct", "l_w"}


def test_reference_bn_side_effects_only_touch_running_statistics() -> None:
    batch, labels, emb = toy_problem()
    with_fx, without = build("avca", **SMALL), build("avca", reference_bn_side_effects=False, **SMALL)
    without.load_state_dict(with_fx.state_dict())
    losses = []
    for m in (with_fx, without):
        m.train()
        torch.manual_seed(3)
        losses.append(float(m.training_loss(batch.index(slice(0, 40)), labels[:40], emb).total.detach()))
    # Same loss (the extra passes are unused), different A_proj running statistics (the extra passes update them).
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    bn = [k for k in with_fx.state_dict() if k.startswith("A_proj") and k.endswith("running_mean")]
    assert any(not torch.equal(with_fx.state_dict()[k], without.state_dict()[k]) for k in bn)


def test_reference_embedding_pass_only_touches_running_statistics() -> None:
    batch, labels, emb = toy_problem()
    plain, extra = build("avca", **SMALL), build("avca", reference_embedding_pass=True, **SMALL)
    extra.load_state_dict(plain.state_dict())
    losses = []
    for m in (plain, extra):
        m.train()
        torch.manual_seed(3)
        losses.append(float(m.training_loss(batch.index(slice(0, 40)), labels[:40], emb).total.detach()))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)  # the pass runs after the loss and adds nothing to it
    a, b = plain.state_dict(), extra.state_dict()
    changed = {k.split(".")[0] for k in a if k.endswith("running_mean") and not torch.equal(a[k], b[k])}
    assert changed == {"A_enc", "V_enc", "W_proj", "A_proj", "V_proj"}
    assert all(torch.equal(a[k], b[k]) for k in a if "running" not in k and "num_batches" not in k)


def test_scores_use_the_video_branch_unless_told_otherwise() -> None:
    batch, labels, emb = toy_problem()
    method = build("avca", **SMALL)
    method.eval()
    with torch.no_grad():
        emb_out = method._embed(batch.audio, batch.visual)
        theta_w = method.W_proj(emb)
        expected = -torch.cdist(emb_out["theta_v"], theta_w)
        torch.testing.assert_close(method.scores(batch, emb), expected)
        both = build("avca", score_branch="both", **SMALL)
        both.load_state_dict(method.state_dict())
        both.eval()
        torch.testing.assert_close(both.scores(batch, emb), expected - torch.cdist(emb_out["theta_a"], theta_w))
    with pytest.raises(ValueError, match="score_branch"):
        build("avca", score_branch="text")
    assert method.scores(FeatureBatch(batch.audio[:2], batch.visual[:2]), emb).shape == (2, emb.shape[0])
