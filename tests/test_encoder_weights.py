"""Shared weights code (encoders/weights.py) and the registry's library contract: weight keys, loader fields."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

from avzsl.extractors.encoders.registry import LOADER_FIELDS, build_encoder, get_encoder_spec, list_encoders
from avzsl.extractors.encoders.weights import (
    CheckpointError,
    MissingWeightsError,
    read_weights,
    state_dict_problems,
)
from avzsl.hashing import file_sha256


def test_file_sha256_is_the_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "w.bin"
    data = bytes(range(256)) * 5000  # > 1 MiB: several chunks
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_read_weights_strips_module_only_when_every_key_has_it(tmp_path: Path) -> None:
    wrapped = tmp_path / "ddp.bin"
    torch.save({"module.a.weight": torch.zeros(2), "module.b": torch.ones(1)}, wrapped)
    assert list(read_weights(wrapped)) == ["a.weight", "b"]
    mixed = tmp_path / "mixed.bin"
    torch.save({"module.a": torch.zeros(1), "b": torch.zeros(1)}, mixed)
    assert list(read_weights(mixed)) == ["module.a", "b"]
    nested = tmp_path / "train.bin"
    torch.save({"state_dict": {"module.x": torch.zeros(1)}, "epoch": 3}, nested)
    assert list(read_weights(nested)) == ["x"]


def test_read_weights_refuses_torchscript_with_the_callers_words(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    with zipfile.ZipFile(path, "w") as archive:  # the layout torch.jit.save writes: code/ and constants.pkl
        archive.writestr("scripted/code/__torch__.py", "")
        archive.writestr("scripted/constants.pkl", b"")
    with pytest.raises(CheckpointError, match=r"scripted\.pt: this is a TorchScript archive; get the plain file"):
        read_weights(path, "this is a TorchScript archive; get the plain file")


def test_state_dict_problems_lists_missing_unexpected_and_shapes() -> None:
    module = nn.Linear(3, 2)
    weights = {"weight": torch.zeros(2, 4), "extra": torch.zeros(1)}
    problems = state_dict_problems("net", module, weights)
    assert problems == [
        "net: 1 missing key(s) [bias]",
        "net: 1 unexpected key(s) [extra]",
        "net: 1 key(s) with the wrong shape [weight [2, 4] != [2, 3]]",
    ]
    assert state_dict_problems("net", module, module.state_dict()) == []


def test_loader_fields_are_declared_but_never_hashed_or_serialised() -> None:
    specs = {name: get_encoder_spec(name) for name in list_encoders()}
    assert specs["selavi_vggsound"].weight_keys == ("selavi",)
    assert specs["clip_clap"].weight_keys == specs["clip_clap_per_second"].weight_keys == ("clip", "clap")
    assert specs["effnet_lite0_aisfx"].weight_keys == () and specs["effnet_lite0_aisfx"].packaged_weights
    assert [n for n, s in specs.items() if s.text_towers] == ["clip_clap", "clip_clap_per_second"]
    for spec in specs.values():
        assert not LOADER_FIELDS & set(spec.to_dict())
        changed = dataclasses.replace(spec, weight_keys=("other",), text_towers=not spec.text_towers)
        assert changed.spec_hash() == spec.spec_hash() and changed == spec


@pytest.mark.parametrize(
    ("name", "weights", "expected"),
    [
        ("selavi_vggsound", {"clip": "c.bin"}, "encoder selavi_vggsound takes weights for selavi; got clip"),
        ("clip_clap", {"selavi": "s.pth", "clip": "c"}, "encoder clip_clap takes weights for clip, clap; got selavi"),
        ("effnet_lite0_aisfx", {"selavi": "s"}, "encoder effnet_lite0_aisfx takes its weights from installed packages"),
    ],
)
def test_build_encoder_refuses_weights_the_set_does_not_take(name: str, weights: dict, expected: str) -> None:
    with pytest.raises(CheckpointError, match=expected) as info:
        build_encoder(name, weights)
    assert "--" not in str(info.value)  # library words, no command-line option


def test_missing_tower_weights_name_the_keys_in_library_words() -> None:
    with pytest.raises(MissingWeightsError) as info:
        build_encoder("clip_clap", {"clip": Path("clip.bin")})
    assert (info.value.encoder, info.value.keys) == ("clip_clap", ("clap",))
    assert "needs weights for clap" in str(info.value) and "random_weights=True" in str(info.value)
    assert "--" not in str(info.value)
