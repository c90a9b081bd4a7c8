"""CLAP tower (transformers ClapModel): strict loading of the Hugging Face layout, window transform, text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avzsl.extractors.encoders.clap import ClapAudioTransform, load_clap
from avzsl.extractors.encoders.weights import CheckpointError
from tests.foundation_fixtures import tiny_clap_checkpoint


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_clap_checkpoint(tmp_path_factory.mktemp("clap"))


def test_checkpoint_folder_loads_strictly_and_embeds(clap_dir: Path) -> None:
    from safetensors.torch import load_file

    tower = load_clap(clap_dir)
    saved = load_file(str(clap_dir / "model.safetensors"))
    state = tower.model.state_dict()
    assert set(saved) <= set(state)
    for key, value in saved.items():
        torch.testing.assert_close(state[key], value, rtol=0, atol=0)
    tone = (np.sin(np.arange(44100) * 2 * np.pi * 440 / 44100) * 8000).astype(np.int16)
    features = tower.window_transform()(tone)
    assert features.shape == (1, 1001, 64)
    audio = tower.encode_audio(torch.stack([features, features]))
    text = tower.encode_text(["a dog barking can be heard.", "rain"])
    assert audio.shape == (2, 16) and text.shape == (2, 16)
    torch.testing.assert_close(text.norm(dim=1), torch.ones(2))
    assert tower.provenance()["weights_file"] == "model.safetensors"


def test_renamed_key_is_refused_naming_it(clap_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    state = load_file(str(clap_dir / "model.safetensors"))
    key = "audio_projection.linear1.weight"
    state[key + "_renamed"] = state.pop(key)
    bad = tmp_path / "clap"
    bad.mkdir()
    for path in clap_dir.iterdir():
        if path.is_file() and path.name != "model.safetensors":
            (bad / path.name).write_bytes(path.read_bytes())
    save_file(state, str(bad / "model.safetensors"))
    with pytest.raises(CheckpointError) as err:
        load_clap(bad)
    message = str(err.value)
    assert "model.safetensors" in message and f"missing key(s) [{key}]" in message
    assert f"unexpected key(s) [{key}_renamed]" in message


def test_window_transform_is_transformers_feature_extractor_at_48k(clap_dir: Path) -> None:
    import torchaudio.functional as AF
    from transformers import ClapFeatureExtractor

    audio = (np.random.default_rng(1).standard_normal(44100) * 3000).astype(np.int16)
    config = {"truncation": "rand_trunc", "padding": "repeatpad"}
    wave = AF.resample(torch.from_numpy(audio.astype(np.float32)) / 32768.0, 44100, 48000).numpy()
    expected = ClapFeatureExtractor(**config)([wave], sampling_rate=48000, return_tensors="np")["input_features"][0]
    np.testing.assert_array_equal(ClapAudioTransform(config)(audio).numpy(), expected)


def test_missing_folder_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no CLAP checkpoint given"):
        load_clap(None)
    (tmp_path / "config.json").write_text(json.dumps({}))
    with pytest.raises(CheckpointError, match="no CLAP weights file"):
        load_clap(tmp_path)
