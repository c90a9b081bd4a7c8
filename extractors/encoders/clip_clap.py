"""The ClipClap encoder sets: CLIP ViT-B/32 visual + CLAP HTSAT audio features, and both text towers.

Two registered sets share the towers and differ in how the per-video visual feature is pooled:

- ``clip_clap``: the ClipClap-GZSL recipe takes ONE frame, the middle frame of the video. Here every 1-s window is
  encoded from its middle frame and the per-video feature is the middle window's (``video_pooling="middle"``): the
  frame shown at ``floor(N / 2) + 0.5`` s instead of the recipe's ``duration / 2`` (within 0.5 s of it). The
  per-window features are kept as sequences.
- ``clip_clap_per_second``: one frame per window, the per-video feature is the mean over windows.

Audio is the mean over windows of the CLAP embeddings of each 1-s window (repeat-padded to CLAP's 10 s); the recipe
encodes one 10-s centre crop of the whole track (docs/encoders.md lists these deviations). Every feature is
L2-normalised, as in the recipe.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avzsl.extractors.encoders.clap import ClapTower, load_clap
from avzsl.extractors.encoders.clip import ClipFrameTransform, ClipTower, load_clip
from avzsl.extractors.encoders.registry import EncoderSpec, register_encoder
from avzsl.extractors.encoders.weights import RANDOM_WEIGHTS, MissingWeightsError

if TYPE_CHECKING:
    import torch

_logger = logging.getLogger(__name__)

_COMMON: dict[str, Any] = {
    "visual_arch": "open_clip ViT-B-32-quickgelu (OpenAI CLIP ViT-B/32)",
    "audio_arch": "transformers ClapModel, LAION-CLAP HTSAT-unfused",
    "out_dim": 512,
    "window_seconds": 1.0,
    "frames_per_window": 1,
    "frame_size": 224,
    "resize_short_side": 224,
    "pixel_mean": 0.0,
    "pixel_std": 0.0,
    "audio_sample_rate": 48000,
    "audio_int16_scale": False,
    "fbank_filters": 64,
    "fbank_frames": 1001,
    "fbank_win_seconds": 1024 / 48000,
    "fbank_hop_seconds": 480 / 48000,
    "fbank_nfft": 1024,
    "fbank_preemph": 0.0,
    "fbank_window": "hann",
    "audio_mean": 0.0,
    "audio_std": 1.0,
    "weights_file": "open_clip_pytorch_model.bin",
    "weights_url": "https://huggingface.co/timm/vit_base_patch32_clip_224.openai",
    "weights_sha256": "",
    "visual_key_prefix": "",
    "audio_key_prefix": "",
    "ignored_key_prefixes": (),
    "source": "https://github.com/dkurzend/ClipClap-GZSL (recipe); https://github.com/mlfoundations/open_clip; "
    "https://github.com/LAION-AI/CLAP via huggingface/transformers ClapModel",
    "licence": "CLIP weights: MIT (openai/CLIP); LAION-CLAP weights: Apache-2.0 (laion/clap-htsat-unfused model "
    "card); not verified offline, check before redistributing",
    "visual_recipe": "middle sampled frame of each 1-s window (0.5 s in at 30 fps); PIL bicubic resize of the short "
    "side to 224, 224 centre crop, RGB/255 normalised per channel (OpenAI CLIP preprocess); embedding L2-normalised",
    "pixel_mean_rgb": (0.48145466, 0.4578275, 0.40821073),
    "pixel_std_rgb": (0.26862954, 0.26130258, 0.27577711),
    "interpolation": "bicubic (PIL)",
    "audio_recipe": "1-s window int16/32768, torchaudio resample 44.1 -> 48 kHz, ClapFeatureExtractor (repeatpad to "
    "10 s, 64 mel bins, hop 480, n_fft 1024); projected embedding L2-normalised",
    "audio_clip_seconds": 10.0,
    "audio_weights_file": "laion/clap-htsat-unfused folder (config.json, model.safetensors, vocab.json, merges.txt)",
    "audio_weights_url": "https://huggingface.co/laion/clap-htsat-unfused",
    "weight_keys": ("clip", "clap"),
    "text_towers": True,
}

CLIP_CLAP = EncoderSpec(name="clip_clap", video_pooling="middle", **_COMMON)
CLIP_CLAP_PER_SECOND = EncoderSpec(name="clip_clap_per_second", **_COMMON)


@dataclass
class ClipClapEncoders:
    """CLIP (visual + text) and CLAP (audio + text) towers behind the extraction interface.

    ``encode_visual``: ``(B, 3, 224, 224)`` -> ``(B, 512)``; ``encode_audio``: ``(B, 1, 1001, 64)`` -> ``(B, 512)``;
    both float32 on CPU, L2-normalised. ``window_transforms()`` gives the decode workers' per-window transforms.
    """

    clip: ClipTower
    clap: ClapTower
    spec: EncoderSpec
    device: torch.device
    precision: str = "fp32"

    @property
    def weights_sha256(self) -> str:
        """``"random"`` when both towers are random, else ``"clip:<sha256>;clap:<sha256>"``."""
        if self.clip.weights_sha256 == RANDOM_WEIGHTS and self.clap.weights_sha256 == RANDOM_WEIGHTS:
            return RANDOM_WEIGHTS
        return f"clip:{self.clip.weights_sha256};clap:{self.clap.weights_sha256}"

    @property
    def random_weights(self) -> bool:
        """Whether any tower is randomly initialised (features are then meaningless)."""
        return RANDOM_WEIGHTS in (self.clip.weights_sha256, self.clap.weights_sha256)

    @property
    def provenance(self) -> dict[str, Any]:
        """Both towers' weights and configurations (recorded in ``cache.json``)."""
        return {"clip": self.clip.provenance(), "clap": self.clap.provenance()}

    def encode_visual(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 224, 224)`` CLIP inputs -> ``(B, 512)``."""
        return self.clip.encode_image(images)

    def encode_audio(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, 1, 1001, 64)`` CLAP log-mel inputs -> ``(B, 512)``."""
        return self.clap.encode_audio(features)

    def window_transforms(self) -> tuple[Any, Any]:
        """Picklable ``(video_fn, audio_fn)``: decoded window frames/audio -> encoder inputs."""
        return ClipFrameTransform(), self.clap.window_transform()


def load_clip_clap(
    spec: EncoderSpec,
    clip_checkpoint: Path | str | None = None,
    clap_checkpoint: Path | str | None = None,
    random_weights: bool = False,
    device: str | torch.device = "cpu",
    seed: int = 0,
    precision: str = "fp32",
    clip_model_cfg: dict[str, Any] | None = None,
    clap_config: dict[str, Any] | None = None,
) -> ClipClapEncoders:
    """Load both towers (each from its file, or random with ``random_weights`` when its file is not given).

    Raises:
        MissingWeightsError: a file not given and no ``random_weights`` (``keys`` names ``"clip"``/``"clap"``).
        CheckpointError: a file that cannot be loaded (see :func:`load_clip`, :func:`load_clap`).
    """
    import torch

    if (clip_checkpoint is None or clap_checkpoint is None) and not random_weights:
        missing = [key for key, path in (("clip", clip_checkpoint), ("clap", clap_checkpoint)) if path is None]
        raise MissingWeightsError(
            f"{spec.name} needs weights for {' and '.join(missing)} (files you download, see docs/encoders.md); "
            "random_weights=True builds seeded random towers for tests only",
            spec.name,
            missing,
        )
    clip = load_clip(clip_checkpoint, random_weights, device, seed, precision, model_cfg=clip_model_cfg)
    clap = load_clap(clap_checkpoint, random_weights, device, seed + 1, precision, config=clap_config)
    if clip.embed_dim != clap.embed_dim:
        _logger.info("CLIP embeds to %d, CLAP to %d dimensions", clip.embed_dim, clap.embed_dim)
    return ClipClapEncoders(clip, clap, spec, torch.device(device), precision)


def _builder(spec: EncoderSpec) -> Any:
    def build(
        weights: Mapping[str, Path | str],
        random_weights: bool = False,
        device: str | torch.device = "cpu",
        seed: int = 0,
        precision: str = "fp32",
        **tiny: Any,
    ) -> ClipClapEncoders:
        return load_clip_clap(
            spec, weights.get("clip"), weights.get("clap"), random_weights, device, seed, precision, **tiny
        )

    build.__doc__ = (
        f"Registry builder of {spec.name}: ``weights['clip']`` / ``weights['clap']`` (see :func:`load_clip_clap`)."
    )
    return build


register_encoder(CLIP_CLAP)(_builder(CLIP_CLAP))
register_encoder(CLIP_CLAP_PER_SECOND)(_builder(CLIP_CLAP_PER_SECOND))
