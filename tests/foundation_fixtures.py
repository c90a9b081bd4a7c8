"""Tiny CLIP and CLAP checkpoints in the official layouts, built locally with random weights (no download).

``tiny_clip_checkpoint``: an open_clip ``CLIP`` state dict saved as ``open_clip_pytorch_model.bin`` with an
``open_clip_config.json`` beside it (the layout of ``timm/vit_base_patch32_clip_224.openai``), ViT 1 x 32 and text
1 x 32 instead of 12 x 768 / 12 x 512. ``tiny_clap_checkpoint``: a ``transformers`` ``ClapModel`` saved with
``save_pretrained`` (``config.json`` + ``model.safetensors``) plus a byte-level RoBERTa tokenizer (``vocab.json``,
``merges.txt``), the layout of ``laion/clap-htsat-unfused``. A forward of either takes milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

TINY_CLIP_CFG = {
    "embed_dim": 16,
    "quick_gelu": True,
    "vision_cfg": {"image_size": 224, "layers": 1, "width": 32, "patch_size": 32, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
}
TINY_CLAP_CFG = {
    "projection_dim": 16,
    "text_config": {
        "vocab_size": 300, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 32, "projection_dim": 16, "max_position_embeddings": 80,
    },
    "audio_config": {
        "depths": [1, 1], "num_attention_heads": [2, 2], "patch_embeds_hidden_size": 16, "hidden_size": 32,
        "projection_dim": 16, "enable_fusion": False,
    },
}


def tiny_clip_checkpoint(folder: Path, seed: int = 3) -> Path:
    """Write a tiny CLIP checkpoint into ``folder``; returns the weights file."""
    from avzsl.extractors.encoders.clip import build_clip_model

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = build_clip_model(TINY_CLIP_CFG)
    path = folder / "open_clip_pytorch_model.bin"
    torch.save(model.state_dict(), path)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_CLIP_CFG}))
    return path


def tiny_clap_checkpoint(folder: Path, seed: int = 4) -> Path:
    """Write a tiny CLAP checkpoint folder; returns the folder."""
    from transformers import ClapConfig, ClapModel

    from avzsl.extractors.encoders.clap import byte_level_tokenizer

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    ClapModel(ClapConfig(**TINY_CLAP_CFG)).save_pretrained(folder)
    byte_level_tokenizer(folder / "tok").save_pretrained(folder)
    return folder
