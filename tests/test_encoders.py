"""SeLaVi encoders and the encoder registry: checkpoint layout, strict loading, errors, golden outputs."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from avzsl.extractors.encoders.registry import (
    EncoderSpec,
    build_encoder,
    get_encoder_spec,
    list_encoders,
    register_encoder,
)
from avzsl.extractors.encoders.selavi import (
    SELAVI_VGGSOUND,
    SelaviEncoders,
    build_audio_encoder,
    build_visual_encoder,
    load_selavi,
)
from avzsl.extractors.encoders.weights import CheckpointError, MissingWeightsError

VIDEO = "module.video_network.base."
AUDIO = "module.audio_network.base."

# Outputs of the seed-0 random encoders on the seeded inputs of `_golden_inputs`, recorded once with
# torch 2.14.1 / torchvision 0.29.1 on CPU. They catch silent changes of architecture, init or input handling.
GOLDEN_VISUAL = {0: 0.233599, 3: 0.394389, 5: 0.311182, 100: 0.310646, 257: 0.229446, 511: 0.034097}
GOLDEN_VISUAL_NORM = 4.56127
GOLDEN_AUDIO = {0: 0.033636, 3: 1.183432, 5: 0.158627, 100: 0.772189, 257: 0.309657, 511: 0.349646}
GOLDEN_AUDIO_NORM = 25.76323


def _golden_inputs() -> tuple[torch.Tensor, torch.Tensor]:
    # Few small frames keep the R(2+1)D forward cheap; the net is fully convolutional with adaptive pooling.
    g = torch.Generator().manual_seed(1234)
    return torch.randn((1, 3, 8, 32, 32), generator=g), torch.randn((1, 1, 257, 99), generator=g)


def _mlp_head(prefix: str, n_classes: int = 309, hidden: int = 512) -> dict[str, torch.Tensor]:
    """SeLaVi ``MLPv2`` head keys; stride-0 zeros so the file stays small (the loader ignores heads)."""
    z = torch.zeros(1)
    return {
        f"{prefix}.block_forward.2.weight": z.expand(hidden, 512),
        f"{prefix}.block_forward.4.weight": z.expand(hidden),
        f"{prefix}.block_forward.4.bias": z.expand(hidden),
        f"{prefix}.block_forward.4.running_mean": z.expand(hidden),
        f"{prefix}.block_forward.4.running_var": z.expand(hidden),
        f"{prefix}.block_forward.4.num_batches_tracked": torch.tensor(0),
        f"{prefix}.block_forward.7.weight": z.expand(n_classes, hidden),
        f"{prefix}.block_forward.7.bias": z.expand(n_classes),
    }


def official_checkpoint(visual_sd: dict, audio_sd: dict) -> dict:
    """A checkpoint laid out like ``selavi_vgg_sound.pth`` (``torch.save`` of the training state)."""
    model = {VIDEO + k: v for k, v in visual_sd.items()}
    model.update({AUDIO + k: v for k, v in audio_sd.items()})
    for i in range(10):
        model.update(_mlp_head(f"module.mlp_v{i}"))
        model.update(_mlp_head(f"module.mlp_a{i}"))
    return {
        "epoch": 150,
        "model": model,
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.01, "momentum": 0.9, "params": [0, 1, 2]}]},
        "selflabels": torch.zeros(4, 10, dtype=torch.long),
    }


def _stride0(sd: dict) -> dict:
    """Same keys and shapes, no payload: for error tests that never run a forward pass."""
    return {k: (torch.zeros(1, dtype=v.dtype).expand(v.shape) if v.ndim else v.clone()) for k, v in sd.items()}


@pytest.fixture(scope="module")
def source_modules() -> tuple[torch.nn.Module, torch.nn.Module]:
    """Encoders with non-default weights and BN statistics, standing in for the trained SeLaVi model."""
    torch.manual_seed(7)
    visual, audio = build_visual_encoder(), build_audio_encoder()
    for module in (visual, audio):
        for m in module.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                # Non-trivial running statistics make the test fail if buffers are not loaded.
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(3)
    return visual.eval(), audio.eval()


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory, source_modules) -> Path:
    visual, audio = source_modules
    path = tmp_path_factory.mktemp("ckpt") / "selavi_vgg_sound.pth"
    torch.save(official_checkpoint(visual.state_dict(), audio.state_dict()), path)
    return path


@pytest.fixture(scope="module")
def shapes_only_model() -> dict[str, torch.Tensor]:
    """The official ``ckpt["model"]`` layout with stride-0 tensors (tiny on disk)."""
    visual, audio = build_visual_encoder(), build_audio_encoder()
    return official_checkpoint(_stride0(visual.state_dict()), _stride0(audio.state_dict()))["model"]


# ---------------------------------------------------------------------------------------------------- registry


def test_registry_lists_default_and_spec_round_trips() -> None:
    assert "selavi_vggsound" in list_encoders()
    spec = get_encoder_spec("selavi_vggsound")
    assert spec is SELAVI_VGGSOUND
    assert spec.visual_input_shape == (3, 30, 112, 112)
    assert spec.audio_input_shape == (1, 257, 99)
    assert (spec.pixel_mean, spec.pixel_std, spec.audio_mean, spec.audio_std) == (0.45, 0.225, 1.93, 17.89)
    assert spec.weights_file == "selavi_vgg_sound.pth"
    data = json.loads(json.dumps(spec.to_dict()))
    assert EncoderSpec.from_dict(data) == spec
    assert spec.spec_hash() == hashlib.sha256(spec.to_json().encode()).hexdigest()[:16]
    assert spec.spec_hash() != dataclasses.replace(spec, frames_per_window=16).spec_hash()
    with pytest.raises(ValueError, match="unknown EncoderSpec field"):
        EncoderSpec.from_dict({**data, "extra": 1})


# The SeLaVi spec hash as of the first registry (a87079a) and unchanged since: every SeLaVi cache records it, and
# a different value makes existing caches look like another encoder's. A recipe change must be a new spec.
SELAVI_SPEC_HASH = "634a4920a26307a3"


def test_selavi_spec_hash_is_frozen() -> None:
    spec = get_encoder_spec("selavi_vggsound")
    assert spec.spec_hash() == SELAVI_SPEC_HASH, (
        "the SeLaVi EncoderSpec changed; existing SeLaVi caches would no longer match. Register a new encoder "
        "spec for a new recipe instead of editing this one"
    )
    assert dataclasses.replace(spec, audio_sample_rate=48000).spec_hash() != SELAVI_SPEC_HASH


def test_unknown_encoder_names_the_registered_ones() -> None:
    with pytest.raises(KeyError, match="selavi_vggsound"):
        get_encoder_spec("no_such_encoder")


def test_register_rejects_a_conflicting_spec() -> None:
    from avzsl.extractors.encoders import registry

    spec = dataclasses.replace(SELAVI_VGGSOUND, name="test_conflict")
    try:
        register_encoder(spec)(lambda weights, random_weights: "built")
        register_encoder(spec)(lambda weights, random_weights: "built")  # same spec again: fine (module re-import)
        assert build_encoder("test_conflict") == "built"
        with pytest.raises(ValueError, match="already registered"):
            register_encoder(dataclasses.replace(spec, out_dim=256))(lambda: None)
    finally:
        registry._REGISTRY.pop("test_conflict", None)


def test_listing_encoders_does_not_import_torch() -> None:
    code = (
        "import sys; from avzsl.extractors.encoders.registry import list_encoders; list_encoders(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# ---------------------------------------------------------------------------------------------------- checkpoint


def test_official_layout_key_counts_and_shapes(shapes_only_model) -> None:
    video = {k[len(VIDEO) :]: v for k, v in shapes_only_model.items() if k.startswith(VIDEO)}
    audio = {k[len(AUDIO) :]: v for k, v in shapes_only_model.items() if k.startswith(AUDIO)}
    assert len(video) == 222  # incl. BatchNorm num_batches_tracked
    assert len(audio) == 72
    assert list(video["stem.0.weight"].shape) == [45, 3, 1, 7, 7]
    assert list(video["layer2.0.conv1.0.0.weight"].shape) == [230, 64, 1, 3, 3]
    assert list(video["layer2.0.conv1.0.3.weight"].shape) == [128, 230, 3, 1, 1]
    assert list(audio["conv1.weight"].shape) == [64, 1, 7, 7]
    assert "fc.weight" not in video and "fc.weight" not in audio


def test_load_official_checkpoint_reproduces_source_outputs(checkpoint_file, source_modules) -> None:
    visual, audio = source_modules
    enc = load_selavi(checkpoint_file)
    assert isinstance(enc, SelaviEncoders)
    assert enc.weights_sha256 == hashlib.sha256(checkpoint_file.read_bytes()).hexdigest()
    assert not enc.random_weights and enc.spec is SELAVI_VGGSOUND
    assert not enc.visual.training and not enc.audio.training
    xv, xa = _golden_inputs()
    with torch.no_grad():
        want_v, want_a = visual(xv), audio(xa)
    got_v, got_a = enc.encode_visual(xv), enc.encode_audio(xa)
    assert got_v.dtype == torch.float32 and got_v.device.type == "cpu" and got_v.shape == (1, 512)
    torch.testing.assert_close(got_v, want_v, rtol=0, atol=0)
    torch.testing.assert_close(got_a, want_a, rtol=0, atol=0)
    # BN buffers came from the file too (not just parameters).
    sd = enc.visual.state_dict()
    torch.testing.assert_close(sd["stem.1.running_var"], visual.state_dict()["stem.1.running_var"])


def test_truncated_checkpoint_names_the_file(checkpoint_file, tmp_path) -> None:
    bad = tmp_path / "truncated.pth"
    with checkpoint_file.open("rb") as f:
        bad.write_bytes(f.read(1 << 20))
    with pytest.raises(CheckpointError, match=r"truncated\.pth: cannot read the checkpoint"):
        load_selavi(bad)


def test_missing_and_unexpected_keys_are_listed(shapes_only_model, tmp_path) -> None:
    model = dict(shapes_only_model)
    del model[VIDEO + "layer4.1.conv2.1.running_var"]
    model[AUDIO + "layer5.0.conv1.weight"] = torch.zeros(1)
    model["module.projector.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pth"
    torch.save({"epoch": 1, "model": model}, path)
    with pytest.raises(CheckpointError) as info:
        load_selavi(path)
    message = str(info.value)
    assert str(path) in message
    assert "visual: 1 missing key(s) [layer4.1.conv2.1.running_var]" in message
    assert "audio: 1 unexpected key(s) [layer5.0.conv1.weight]" in message
    assert "1 unexpected top-level key(s) [module.projector.weight]" in message


def test_wrong_shapes_are_listed(shapes_only_model, tmp_path) -> None:
    model = dict(shapes_only_model)
    model[AUDIO + "conv1.weight"] = torch.zeros(64, 3, 7, 7)  # an RGB ImageNet stem
    path = tmp_path / "rgb_audio.pth"
    torch.save(model, path)  # a bare state dict is accepted as well
    with pytest.raises(CheckpointError, match=r"audio: 1 key\(s\) with the wrong shape \[conv1.weight \[64, 3, 7, 7\]"):
        load_selavi(path)


def test_bare_state_dict_without_module_prefix_loads(shapes_only_model, tmp_path) -> None:
    model = {k.removeprefix("module."): v for k, v in shapes_only_model.items()}
    path = tmp_path / "bare.pth"
    torch.save(model, path)
    enc = load_selavi(path)
    assert float(enc.audio.state_dict()["conv1.weight"].abs().sum()) == 0.0  # the zeros came from the file


def test_no_checkpoint_says_where_weights_come_from() -> None:
    with pytest.raises(MissingWeightsError) as info:
        load_selavi(None)
    message = str(info.value)
    assert "https://dl.fbaipublicfiles.com/selavi/" in message
    assert "selavi_vgg_sound.pth" in message and "random_weights=True" in message
    assert "--" not in message.replace("https://", "")  # library words: no command-line option
    assert (info.value.encoder, info.value.keys) == ("selavi_vggsound", ("selavi",))


def test_missing_file_names_the_path(tmp_path) -> None:
    with pytest.raises(CheckpointError, match=r"nowhere\.pth: checkpoint file not found"):
        load_selavi(tmp_path / "nowhere.pth")


# ---------------------------------------------------------------------------------------------------- forward


@pytest.fixture(scope="module")
def random_encoders() -> SelaviEncoders:
    return build_encoder("selavi_vggsound", random_weights=True, seed=0)


def test_random_weights_are_seeded_and_match_golden_values(random_encoders) -> None:
    enc = random_encoders
    assert enc.weights_sha256 == "random" and enc.random_weights
    xv, xa = _golden_inputs()
    v, a = enc.encode_visual(xv)[0], enc.encode_audio(xa)[0]
    for out, golden, norm in ((v, GOLDEN_VISUAL, GOLDEN_VISUAL_NORM), (a, GOLDEN_AUDIO, GOLDEN_AUDIO_NORM)):
        got = torch.tensor([out[i].item() for i in golden])
        torch.testing.assert_close(got, torch.tensor(list(golden.values())), rtol=1e-4, atol=2e-6)
        assert out.norm().item() == pytest.approx(norm, rel=1e-4)


def test_random_init_leaves_global_rng_alone() -> None:
    state = torch.random.get_rng_state()
    audio_only = load_selavi(None, random_weights=True, seed=3).audio
    assert torch.equal(torch.random.get_rng_state(), state)
    again = load_selavi(None, random_weights=True, seed=3).audio
    torch.testing.assert_close(audio_only.state_dict(), again.state_dict(), rtol=0, atol=0)


def test_reference_input_contract(random_encoders) -> None:
    spec = random_encoders.spec
    v = random_encoders.encode_visual(torch.zeros((1, *spec.visual_input_shape)))
    a = random_encoders.encode_audio(torch.zeros((2, *spec.audio_input_shape)))
    assert v.shape == (1, 512) and a.shape == (2, 512)
    assert v.dtype == a.dtype == torch.float32
    with pytest.raises(ValueError, match=r"\(B, 3, T, H, W\)"):
        random_encoders.encode_visual(torch.zeros((3, 30, 112, 112)))
    with pytest.raises(ValueError, match=r"\(B, 1, F, T\)"):
        random_encoders.encode_audio(torch.zeros((1, 257, 99)))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_features_are_float32_on_cpu_and_close(random_encoders) -> None:
    cuda = load_selavi(None, random_weights=True, seed=0, device="cuda")
    xv, xa = _golden_inputs()
    for got, want in (
        (cuda.encode_visual(xv), random_encoders.encode_visual(xv)),
        (cuda.encode_audio(xa), random_encoders.encode_audio(xa)),
    ):
        assert got.dtype == torch.float32 and got.device.type == "cpu"
        cos = torch.nn.functional.cosine_similarity(got, want).item()
        assert cos > 0.99  # bf16 autocast: close in direction, not bit-equal
