"""ModelConfig / LossConfig: validation and dict round-trip."""

import json

import pytest

from avzsl.model.config import LossConfig, ModelConfig


def test_defaults_match_paper():
    m = ModelConfig()
    assert (m.audio_dim, m.visual_dim, m.text_dim, m.att_dim, m.embed_dim) == (512, 512, 300, 300, 64)
    assert (m.tau, m.branch_beta) == (1.0, 0.5)
    loss = LossConfig()
    assert (loss.variant, loss.lambda_kd, loss.lambda_mask, loss.mask_ratio) == ("cls+kd+mask", 1.0, 0.5, 0.1)


def test_round_trip_through_json():
    m = ModelConfig(text_dim=50, att_heads=3, att_dim=30, dropout=0.0)
    loss = LossConfig(variant="cls+kd", mask_ratio=0.2, mask_norm="l1", pseudo_mask_scope="batch")
    assert ModelConfig.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    assert LossConfig.from_dict(json.loads(json.dumps(loss.to_dict()))) == loss


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown ModelConfig keys"):
        ModelConfig.from_dict({"audio_dims": 512})


@pytest.mark.parametrize(
    "kwargs, match",
    [({"att_dim": 300, "att_heads": 7}, "divide"), ({"embed_dim": 0}, "embed_dim"), ({"dropout": 1.0}, "dropout"),
     ({"tau": 0.0}, "tau"), ({"branch_beta": 1.5}, "branch_beta"), ({"text_dim": 2.5}, "text_dim")],
)
def test_model_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"variant": "kd"}, "variant"), ({"topk_by": "abs"}, "topk_by"), ({"mask_norm": "l3"}, "mask_norm"),
     ({"pseudo_mask_scope": "class"}, "pseudo_mask_scope"), ({"mask_ratio": 1.2}, "mask_ratio"),
     ({"lambda_kd": -1.0}, "lambda")],
)
def test_loss_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LossConfig(**kwargs)


def test_variant_switches():
    assert (LossConfig(variant="cls").use_kd, LossConfig(variant="cls").use_mask) == (False, False)
    assert (LossConfig(variant="cls+kd").use_kd, LossConfig(variant="cls+kd").use_mask) == (True, False)
    assert (LossConfig().use_kd, LossConfig().use_mask) == (True, True)
