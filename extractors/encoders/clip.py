"""CLIP ViT-B/32 (open-clip-torch): image tower for visual features, text tower for class names, 512-d each.

The ClipClap-GZSL recipe (dkurzend/ClipClap-GZSL ``clip_feature_extraction/get_clip_features_*.py``) uses OpenAI's
``clip.load("ViT-B/32")``: its preprocessing is short side to 224 with PIL bicubic, a 224 x 224 centre crop,
RGB in [0, 1] normalised with the OpenAI mean/std, and the image embedding is L2-normalised. open_clip's
``ViT-B-32-quickgelu`` is the same network with the same parameter names (``visual.conv1.weight``,
``transformer.resblocks.0.attn.in_proj_weight``, ``text_projection``, ...), and ships OpenAI's BPE vocabulary, so
the text tower needs no download.

Weights come from a file the user downloads (``docs/encoders.md``): the open_clip state dict
``open_clip_pytorch_model.bin`` (or ``open_clip_model.safetensors``) of ``timm/vit_base_patch32_clip_224.openai``.
It is read with ``weights_only=True`` (or safetensors) and checked strictly against the model's keys. When an
``open_clip_config.json`` lies beside the file (the Hugging Face repository has one), its ``model_cfg`` builds the
model; otherwise the official ViT-B-32-quickgelu configuration does. Tests use that to build tiny models.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avzsl.extractors.encoders.precision import autocast, check_precision
from avzsl.extractors.encoders.weights import (
    RANDOM_WEIGHTS,
    CheckpointError,
    read_weights,
    state_dict_problems,
)
from avzsl.hashing import file_sha256

if TYPE_CHECKING:
    import torch
    from torch import nn

_logger = logging.getLogger(__name__)

OFFICIAL_MODEL = "ViT-B-32-quickgelu"
CONFIG_FILE = "open_clip_config.json"
WEIGHTS_FILE = "open_clip_pytorch_model.bin"
WEIGHTS_URL = "https://huggingface.co/timm/vit_base_patch32_clip_224.openai/resolve/main/open_clip_pytorch_model.bin"
# OpenAI's own ViT-B-32.pt is a TorchScript archive; the plain state dict holds the same network.
TORCHSCRIPT_REFUSAL = (
    "this is a TorchScript archive (OpenAI's ViT-B-32.pt); avzsl never executes TorchScript. "
    f"Download the plain state dict {WEIGHTS_FILE} instead ({WEIGHTS_URL})"
)
IMAGE_SIZE = 224
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
# Entries of OpenAI's TorchScript state dict that are not parameters (open_clip drops them the same way).
_META_KEYS = ("input_resolution", "context_length", "vocab_size")


def official_model_cfg() -> dict[str, Any]:
    """open_clip's ``ViT-B-32-quickgelu`` configuration (embed 512, ViT 12 x 768, text 12 x 512)."""
    import open_clip

    return open_clip.get_model_config(OFFICIAL_MODEL)


def build_clip_model(model_cfg: dict[str, Any]) -> nn.Module:
    """An open_clip ``CLIP`` from a ``model_cfg`` dict (randomly initialised; the caller seeds torch)."""
    from open_clip.model import CLIP

    return CLIP(**model_cfg)


def clip_frame_tensor(frame: np.ndarray) -> torch.Tensor:
    """One RGB frame to CLIP input, exactly OpenAI CLIP's ``preprocess`` (PIL bicubic, centre crop, normalise).

    Args:
        frame: uint8 ``(H, W, 3)`` RGB.

    Returns:
        float32 ``(3, 224, 224)``.
    """
    import torchvision.transforms.functional as TF
    from PIL import Image
    from torchvision.transforms import InterpolationMode

    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"frame must be (H, W, 3), got {tuple(frame.shape)}")
    image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8), mode="RGB")
    image = TF.resize(image, IMAGE_SIZE, interpolation=InterpolationMode.BICUBIC)
    image = TF.center_crop(image, IMAGE_SIZE)
    return TF.normalize(TF.to_tensor(image), OPENAI_MEAN, OPENAI_STD)


@dataclass(frozen=True)
class ClipFrameTransform:
    """Decoded window -> CLIP input: the middle one of the window's sampled frames (picklable for workers).

    ``__call__(frames uint8 (T, H, W, 3)) -> float32 (3, 224, 224)``; with T = 30 at 30 fps the middle frame is
    the one shown 0.5 s into the window.
    """

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        frames = np.asarray(frames)
        if frames.ndim != 4:
            raise ValueError(f"frames must be (T, H, W, 3), got {tuple(frames.shape)}")
        return clip_frame_tensor(frames[frames.shape[0] // 2])


@dataclass
class ClipTower:
    """A loaded CLIP model (eval mode) with its tokenizer.

    Attributes:
        model: open_clip ``CLIP``.
        tokenizer: open_clip tokenizer (OpenAI BPE, context 77).
        weights_sha256: sha256 of the weights file, or ``"random"``.
        model_cfg: the open_clip configuration the model was built from.
        device: where the model lives.
        precision: ``fp32``, ``bf16`` or ``fp16`` autocast.
    """

    model: nn.Module
    tokenizer: Any
    weights_sha256: str
    model_cfg: dict[str, Any]
    device: torch.device
    precision: str = "fp32"
    weights_path: str | None = field(default=None)

    @property
    def embed_dim(self) -> int:
        """Size of the joint embedding (512 for ViT-B/32)."""
        return int(self.model_cfg["embed_dim"])

    def _run(self, fn: Any, x: torch.Tensor) -> torch.Tensor:
        import torch

        with torch.inference_mode(), autocast(self.device, self.precision):
            out = fn(x.to(self.device))
        out = out.float()
        return (out / out.norm(dim=-1, keepdim=True).clamp_min(1e-12)).cpu()

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 224, 224)`` normalised images -> ``(B, embed_dim)`` float32 L2-normalised embeddings."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"CLIP image input must be (B, 3, H, W), got {tuple(images.shape)}")
        return self._run(self.model.encode_image, images.float())

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """``N`` prompts -> ``(N, embed_dim)`` float32 L2-normalised text embeddings."""
        return self._run(self.model.encode_text, self.tokenizer(list(prompts)))

    def provenance(self) -> dict[str, Any]:
        """JSON description: weights, configuration, whether it is the official architecture."""
        return {
            "model": "open_clip CLIP",
            "weights_sha256": self.weights_sha256,
            "weights_file": Path(self.weights_path).name if self.weights_path else None,
            "official_architecture": self.model_cfg == official_model_cfg(),
            "model_cfg": self.model_cfg,
        }


def _model_cfg_for(path: Path) -> dict[str, Any]:
    config = path.parent / CONFIG_FILE
    if not config.is_file():
        return official_model_cfg()
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        return dict(data["model_cfg"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{config}: not an open_clip config with a 'model_cfg' object ({exc})") from exc


def load_clip(
    checkpoint_path: Path | str | None,
    random_weights: bool = False,
    device: str | torch.device = "cpu",
    seed: int = 0,
    precision: str = "fp32",
    model_cfg: dict[str, Any] | None = None,
) -> ClipTower:
    """Build CLIP and load a weights file strictly.

    Args:
        checkpoint_path: ``open_clip_pytorch_model.bin`` / ``.safetensors``; ``None`` requires ``random_weights``.
        random_weights: seeded random weights (tests and smoke runs only); ignored when a file is given.
        device: where the model goes.
        seed: seed of the random initialisation.
        precision: ``fp32``, ``bf16`` or ``fp16``.
        model_cfg: configuration for random weights (default: the official ViT-B-32-quickgelu).

    Raises:
        CheckpointError: no file and no ``random_weights``; the file is missing, unreadable, TorchScript, or its
            keys/shapes differ from the model's (the message names the file and the missing/unexpected keys).
    """
    import open_clip
    import torch

    check_precision(precision)
    if checkpoint_path is None and not random_weights:
        raise CheckpointError(
            f"no CLIP checkpoint given: download {WEIGHTS_URL} and pass its path (docs/encoders.md); "
            "random_weights=True builds seeded random encoders for tests only"
        )
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    if path is not None and not path.is_file():
        raise CheckpointError(f"{path}: CLIP checkpoint file not found (expected {WEIGHTS_FILE}, docs/encoders.md)")
    cfg = _model_cfg_for(path) if path is not None else dict(model_cfg or official_model_cfg())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            model = build_clip_model(cfg)
        except TypeError as exc:
            raise CheckpointError(f"CLIP model_cfg is not an open_clip configuration: {exc}") from exc
    if path is None:
        sha = RANDOM_WEIGHTS
        _logger.warning("CLIP uses RANDOM weights (seed %d): features are meaningless", seed)
    else:
        sha = file_sha256(path)
        weights = {k: v for k, v in read_weights(path, TORCHSCRIPT_REFUSAL).items() if k not in _META_KEYS}
        problems = state_dict_problems("CLIP", model, weights)
        if problems:
            raise CheckpointError(
                f"{path}: checkpoint does not match open_clip {OFFICIAL_MODEL}: " + "; ".join(problems)
            )
        model.load_state_dict(weights, strict=True)
        _logger.info("loaded CLIP from %s (sha256 %s)", path, sha)
    torch_device = torch.device(device)
    model.to(torch_device).eval()
    context = int(cfg.get("text_cfg", {}).get("context_length", 77))
    tokenizer = open_clip.tokenizer.SimpleTokenizer(context_length=context)
    return ClipTower(model, tokenizer, sha, cfg, torch_device, precision, str(path) if path else None)


__all__ = [
    "ClipFrameTransform",
    "ClipTower",
    "OFFICIAL_MODEL",
    "build_clip_model",
    "clip_frame_tensor",
    "load_clip",
    "official_model_cfg",
]
