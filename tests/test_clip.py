"""CLIP tower: strict loading of the open_clip layout, the OpenAI preprocessing, text embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from avzsl.extractors.encoders.clip import ClipFrameTransform, clip_frame_tensor, load_clip
from avzsl.extractors.encoders.weights import CheckpointError
from tests.foundation_fixtures import TINY_CLIP_CFG, tiny_clip_checkpoint


@pytest.fixture(scope="module")
def clip_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_clip_checkpoint(tmp_path_factory.mktemp("clip"))


def test_checkpoint_loads_strictly_and_embeds_unit_vectors(clip_file: Path) -> None:
    tower = load_clip(clip_file)
    saved = torch.load(clip_file, weights_only=True)
    for key, value in tower.model.state_dict().items():
        torch.testing.assert_close(value, saved[key], rtol=0, atol=0)
    assert tower.model_cfg == TINY_CLIP_CFG and len(tower.weights_sha256) == 64
    images = tower.encode_image(torch.randn(2, 3, 224, 224))
    text = tower.encode_text(["a photo of a dog", "a video of a person rowing"])
    assert images.shape == (2, 16) and text.shape == (2, 16)
    torch.testing.assert_close(images.norm(dim=1), torch.ones(2))
    assert not torch.allclose(text[0], text[1])
    assert tower.provenance()["official_architecture"] is False


def test_renamed_key_is_refused_naming_it(clip_file: Path, tmp_path: Path) -> None:
    state = torch.load(clip_file, weights_only=True)
    state["visual.proj_renamed"] = state.pop("visual.proj")
    bad = tmp_path / "open_clip_pytorch_model.bin"
    torch.save(state, bad)
    (tmp_path / "open_clip_config.json").write_text((clip_file.parent / "open_clip_config.json").read_text())
    with pytest.raises(CheckpointError) as err:
        load_clip(bad)
    message = str(err.value)
    assert str(bad) in message and "missing key(s) [visual.proj]" in message
    assert "unexpected key(s) [visual.proj_renamed]" in message


def test_no_checkpoint_needs_random_weights_and_a_torchscript_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no CLIP checkpoint given"):
        load_clip(None)
    scripted = torch.jit.script(torch.nn.Linear(2, 2))
    path = tmp_path / "ViT-B-32.pt"
    scripted.save(str(path))
    with pytest.raises(CheckpointError, match="TorchScript"):
        load_clip(path)


def test_frame_preprocessing_is_open_clips_official_transform() -> None:
    import open_clip
    from PIL import Image

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    official = open_clip.image_transform(224, is_train=False, mean=open_clip.OPENAI_DATASET_MEAN,
                                         std=open_clip.OPENAI_DATASET_STD)
    expected = official(Image.fromarray(frame))
    torch.testing.assert_close(clip_frame_tensor(frame), expected, rtol=0, atol=0)
    window = np.stack([frame * 0, frame, frame * 0])  # the middle frame of the window is used
    torch.testing.assert_close(ClipFrameTransform()(window), expected, rtol=0, atol=0)
