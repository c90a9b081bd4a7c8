"""Issue 18's open choices of the paper's method at scale: the form of f_w, weight decay, stage-1 patience."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from avzsl.model.coordinate_generalize import PRESETS, CoordinateGeneralizeMethod, CoordinateGeneralizeOptions
from avzsl.model.networks import EmbeddingMLP, TextProjection
from avzsl.model.registry import FeatureDims, build_method
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.run.config import TrainConfig

DIMS = FeatureDims(audio_dim=12, visual_dim=10, text_dim=8)


def _method(**options: object) -> CoordinateGeneralizeMethod:
    torch.manual_seed(0)
    return build_method("coordinate_generalize", DIMS, {"att_dim": 16, "att_heads": 2, "att_ff": 16,
                                                         "embed_dim": 6, "embed_hidden": 10, **options})


def test_the_paper_f_w_keeps_its_parameter_names_and_the_other_forms_differ() -> None:
    paper = _method()
    assert isinstance(paper.net.f_w, EmbeddingMLP) and "net.f_w.net.0.weight" in paper.state_dict()
    residual, linear = _method(text_form="residual"), _method(text_form="linear")
    assert isinstance(residual.net.f_w, TextProjection) and isinstance(linear.net.f_w, TextProjection)
    assert not any(k.startswith("net.f_w.net") for k in linear.state_dict())
    with pytest.raises(ValueError, match="text_form"):
        CoordinateGeneralizeOptions(text_form="deep")
    with pytest.raises(ValueError, match="text_dropout"):
        CoordinateGeneralizeOptions(text_dropout=1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        CoordinateGeneralizeOptions(weight_decay=-1.0)


def test_residual_f_w_starts_linear_and_learns_a_correction() -> None:
    proj = TextProjection(8, 10, 6, form="residual")
    w = torch.randn(5, 8)
    torch.testing.assert_close(proj(w), proj.skip(w))  # the MLP's output layer starts at zero
    loss = (proj(w) - torch.randn(5, 6)).pow(2).sum()
    loss.backward()
    assert proj.net[3].weight.grad.abs().sum() > 0  # ... and is trained
    linear = TextProjection(8, 10, 6, form="linear")
    torch.testing.assert_close(linear(w), w @ linear.skip.weight.T + linear.skip.bias)


def test_text_dropout_acts_in_training_only() -> None:
    proj = TextProjection(8, 64, 6, form="mlp", dropout=0.5)
    w = torch.randn(5, 8)
    proj.train()
    assert not torch.allclose(proj(w), proj(w))
    proj.eval()
    torch.testing.assert_close(proj(w), proj(w))


def test_weight_decay_as_adam_l2_or_adamw() -> None:
    default = _method().configure_optimizer(1e-3)  # recommended: AdamW, 0.01 (issue 18's validation)
    assert type(default) is torch.optim.AdamW and default.param_groups[0]["weight_decay"] == 0.01
    plain = _method(weight_decay=0.0, decoupled_weight_decay=False).configure_optimizer(1e-3)
    assert type(plain) is torch.optim.Adam and plain.param_groups[0]["weight_decay"] == 0.0
    paper = build_method("coordinate_generalize", DIMS, {**PRESETS["paper"], "att_dim": 16, "att_heads": 2,
                                                         "att_ff": 16, "embed_dim": 6, "embed_hidden": 10})
    assert type(paper.configure_optimizer(1e-3)) is torch.optim.Adam  # the paper: Adam, no weight decay
    assert paper.configure_optimizer(1e-3).param_groups[0]["weight_decay"] == 0.0
    l2 = _method(weight_decay=1e-4, decoupled_weight_decay=False).configure_optimizer(1e-3)
    assert type(l2) is torch.optim.Adam and l2.param_groups[0]["weight_decay"] == 1e-4
    decoupled = _method(weight_decay=0.01, decoupled_weight_decay=True).configure_optimizer(1e-3)
    assert type(decoupled) is torch.optim.AdamW and decoupled.param_groups[0]["weight_decay"] == 0.01


def test_new_settings_at_their_former_value_keep_a_stored_run_s_hash() -> None:
    former = {"weight_decay": 0.0, "decoupled_weight_decay": False}  # the defaults before issue 18's choice
    cfg = TrainConfig(cache="c", benchmark="ucf", method_options=former)
    stored = cfg.to_dict()
    stored.pop("patience")
    for key in ("text_form", "text_dropout", "weight_decay", "decoupled_weight_decay"):
        stored["method_options"].pop(key)
    # A config.json written before these settings existed reads back with the same hash ...
    assert TrainConfig.from_dict(stored).result_hash() == cfg.result_hash()
    # ... and any other value of them is another configuration.
    hashes = {cfg.result_hash(), TrainConfig(cache="c", benchmark="ucf", method_options=former,
                                             patience=3).result_hash()}
    for option in ({"text_form": "residual"}, {"text_dropout": 0.1}, {"weight_decay": 1e-4},
                   {"weight_decay": 1e-4, "decoupled_weight_decay": True}):
        hashes.add(TrainConfig(cache="c", benchmark="ucf", method_options={**former, **option}).result_hash())
    hashes.add(TrainConfig(cache="c", benchmark="ucf").result_hash())  # today's default: AdamW 0.01
    assert len(hashes) == 7
    with pytest.raises(ValueError, match="patience"):
        TrainConfig(cache="c", benchmark="ucf", patience=0)


def test_a_stored_run_without_the_new_settings_reads_back_as_it_ran() -> None:
    """A config.json written before weight decay existed ran with Adam and no decay: that is what it reads back as,
    not today's default (AdamW 0.01), so resuming it continues the same optimiser."""
    stored = TrainConfig(cache="c", benchmark="ucf").to_dict()
    for key in ("text_form", "text_dropout", "weight_decay", "decoupled_weight_decay"):
        stored["method_options"].pop(key)
    back = TrainConfig.from_dict(stored)
    assert back.method_options["weight_decay"] == 0.0 and back.method_options["decoupled_weight_decay"] is False
    assert TrainConfig.from_dict(TrainConfig(cache="c", benchmark="ucf").to_dict()).method_options[
        "weight_decay"] == 0.01  # a complete stored configuration reads back unchanged


def test_patience_stops_stage_1_and_stage_2_trains_e_star(synthetic_cache, tmp_path: Path) -> None:
    cache, splits = synthetic_cache
    run = tmp_path / "run"
    args = ["--cache", str(cache), "--splits", str(splits), "--out", str(run), "--epochs", "40", "--batch-size",
            "32", "--device", "cpu", "--patience", "2"]
    assert cli_train.main(args) == 0
    history = [json.loads(x) for x in (run / "stage1" / "epochs.jsonl").read_text().splitlines()]
    best = max(history, key=lambda r: r["val"]["H"])
    assert len(history) < 40
    assert history[-1]["epoch"] - best["epoch"] == 2  # stopped 2 epochs after the last improvement
    assert all(r["val"]["H"] <= best["val"]["H"] for r in history[best["epoch"]:])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epoch"] == best["epoch"]
    assert len((run / "stage2" / "epochs.jsonl").read_text().splitlines()) == best["epoch"]
    assert "validation H has not improved for 2 epochs" in (run / "train.log").read_text()
