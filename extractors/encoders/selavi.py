"""SeLaVi encoders: R(2+1)D-18 (visual) and ResNet-9 (audio), 512-d features per one-second window.

Architecture and checkpoint layout follow ``facebookresearch/selavi`` (``model.py``) as used for the AV-GZSL
"main_features" (see ``docs/encoders.md``):

- visual: torchvision ``r2plus1d_18`` with ``fc = Identity()``; input ``(B, 3, 30, 112, 112)`` -> ``(B, 512)``.
- audio: torchvision ``ResNet(BasicBlock, [1, 1, 1, 1])`` with a one-channel ``conv1`` and ``fc = Identity()``;
  input ``(B, 1, 257, 99)`` log filter-bank -> ``(B, 512)``.

The checkpoint is ``torch.save({"epoch", "model": state_dict, "optimizer", ...})``; encoder keys are the
torchvision module names behind ``module.video_network.base.`` / ``module.audio_network.base.``; the
clustering heads ``module.mlp_{v,a}{0..9}.*`` are ignored. Both encoders load strictly.

torch and torchvision are imported inside functions so that importing this module (which registers the
encoder) stays cheap.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avzsl.extractors.encoders.precision import autocast, check_precision
from avzsl.extractors.encoders.registry import EncoderSpec, register_encoder
from avzsl.extractors.encoders.weights import (
    RANDOM_WEIGHTS,
    CheckpointError,
    MissingWeightsError,
    load_weights_only,
    shown_keys,
    state_dict_problems,
)
from avzsl.hashing import file_sha256

if TYPE_CHECKING:
    import torch
    from torch import nn

_logger = logging.getLogger(__name__)

SELAVI_VGGSOUND = EncoderSpec(
    name="selavi_vggsound",
    visual_arch="r2plus1d_18",
    audio_arch="resnet9",
    out_dim=512,
    window_seconds=1.0,
    frames_per_window=30,
    frame_size=112,
    resize_short_side=112,
    pixel_mean=0.45,
    pixel_std=0.225,
    audio_sample_rate=44100,
    audio_int16_scale=True,
    fbank_filters=257,
    fbank_frames=99,
    fbank_win_seconds=0.02,
    fbank_hop_seconds=0.01,
    fbank_nfft=1024,
    fbank_preemph=0.97,
    fbank_window="rectangular",
    audio_mean=1.93,
    audio_std=17.89,
    # AVCA-GZSL calls the file selavi_vgg_sound.pth; the SeLaVi model zoo publishes it as
    # selavi_vgg_sound_150.pth (VGG-Sound, 309 clusters, 10 heads, 150 epochs). Rename after download.
    weights_file="selavi_vgg_sound.pth",
    weights_url="https://dl.fbaipublicfiles.com/selavi/selavi_vgg_sound_150.pth",
    weights_sha256="",  # not recorded: no copy of the file was available when this spec was written
    visual_key_prefix="module.video_network.base.",
    audio_key_prefix="module.audio_network.base.",
    ignored_key_prefixes=("module.mlp_v", "module.mlp_a"),
    source="https://github.com/facebookresearch/selavi (README, Model Zoo); Asano et al., NeurIPS 2020",
    licence="see the LICENSE of facebookresearch/selavi (not verified offline; check before redistributing)",
    weight_keys=("selavi",),
)


def build_visual_encoder() -> nn.Module:
    """R(2+1)D-18 with the classifier removed: ``(B, 3, T, H, W)`` -> ``(B, 512)``; randomly initialised."""
    from torch import nn
    from torchvision.models.video import r2plus1d_18

    model = r2plus1d_18(weights=None)
    model.fc = nn.Identity()
    return model


def build_audio_encoder() -> nn.Module:
    """SeLaVi "resnet9": ``(B, 1, F, T)`` -> ``(B, 512)``; randomly initialised.

    Built from torchvision's ResNet so the parameter names equal the checkpoint's after the prefix is
    stripped (SeLaVi used the private ``torchvision.models.resnet._resnet``, whose signature has changed).
    """
    from torch import nn
    from torchvision.models.resnet import BasicBlock, ResNet

    model = ResNet(BasicBlock, [1, 1, 1, 1])
    model.conv1 = nn.Conv2d(1, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False)
    model.fc = nn.Identity()
    return model


def _build_seeded(seed: int) -> tuple[nn.Module, nn.Module]:
    """Both encoders, initialised from ``seed`` without touching the caller's global RNG state."""
    import torch

    # fork_rng restores the global CPU RNG afterwards; construction runs on CPU, so this is deterministic
    # across processes and machines with the same torch/torchvision versions.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        visual = build_visual_encoder()
        audio = build_audio_encoder()
    return visual, audio


@dataclass
class SelaviEncoders:
    """The two SeLaVi encoders, in eval mode on ``device``.

    Attributes:
        visual: R(2+1)D-18, ``(B, 3, 30, 112, 112)`` -> ``(B, 512)``.
        audio: ResNet-9, ``(B, 1, 257, 99)`` -> ``(B, 512)``.
        weights_sha256: sha256 of the checkpoint file, or ``"random"`` for seeded random weights.
        spec: input contract and provenance.
        device: where the modules live.
        precision: ``fp32`` (default: the official extraction's numbers), ``bf16`` or ``fp16`` autocast.
    """

    visual: nn.Module
    audio: nn.Module
    weights_sha256: str
    spec: EncoderSpec
    device: torch.device
    precision: str = "fp32"

    @property
    def random_weights(self) -> bool:
        """Whether the encoders are randomly initialised (features are meaningless; for tests only)."""
        return self.weights_sha256 == RANDOM_WEIGHTS

    def encode_visual(self, frames: torch.Tensor) -> torch.Tensor:
        """Visual features.

        Args:
            frames: ``(B, 3, T, H, W)`` float, normalised per the spec (the reference contract is
                T = 30, H = W = 112; the network is fully convolutional, so other sizes run but differ from
                the published features).

        Returns:
            ``(B, 512)`` float32 on CPU.
        """
        if frames.ndim != 5 or frames.shape[1] != 3:
            raise ValueError(f"visual input must be (B, 3, T, H, W), got {tuple(frames.shape)}")
        return self._forward(self.visual, frames)

    def encode_audio(self, spectrogram: torch.Tensor) -> torch.Tensor:
        """Audio features.

        Args:
            spectrogram: ``(B, 1, F, T)`` float normalised log filter-bank energies (reference: F = 257,
                T = 99).

        Returns:
            ``(B, 512)`` float32 on CPU.
        """
        if spectrogram.ndim != 4 or spectrogram.shape[1] != 1:
            raise ValueError(f"audio input must be (B, 1, F, T), got {tuple(spectrogram.shape)}")
        return self._forward(self.audio, spectrogram)

    def _forward(self, module: nn.Module, x: torch.Tensor) -> torch.Tensor:
        import torch

        with torch.inference_mode():
            x = x.to(self.device, dtype=torch.float32, non_blocking=True)
            # fp32 unless asked: reduced precision is faster on GPUs but no longer the official features.
            with autocast(self.device, self.precision):
                out = module(x)
            return out.float().cpu()


def _missing_weights_message(spec: EncoderSpec) -> str:
    return (
        f"no SeLaVi checkpoint given. Download {spec.weights_url} (SeLaVi model zoo, "
        f"https://github.com/facebookresearch/selavi) and pass its path (AVCA-GZSL calls the file "
        f"{spec.weights_file}). For tests and smoke runs only, random_weights=True builds "
        "seeded random encoders; their features are meaningless."
    )


def _read_state_dict(path: Path) -> dict[str, Any]:
    """``ckpt["model"]`` (or ``ckpt["state_dict"]``, or the file itself when it is a bare state dict)."""
    import torch

    ckpt = load_weights_only(path)
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, got {type(ckpt).__name__}")
    for key in ("model", "state_dict"):
        if isinstance(ckpt.get(key), dict):
            return ckpt[key]
    if ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt
    raise CheckpointError(
        f"{path}: no 'model' state dict in the checkpoint (top-level keys: {shown_keys(sorted(ckpt))})"
    )


def split_state_dict(state_dict: dict[str, Any], spec: EncoderSpec) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Split a SeLaVi state dict into the two encoders' state dicts.

    Keys may lack the leading ``module.`` (a model saved without DistributedDataParallel).

    Returns:
        ``(visual, audio, unknown)``: encoder state dicts with the prefixes stripped, and the keys that
        belong to neither encoder nor to an ignored head.
    """
    visual: dict[str, Any] = {}
    audio: dict[str, Any] = {}
    unknown: list[str] = []
    for key, value in state_dict.items():
        full = key if key.startswith("module.") else f"module.{key}"
        if full.startswith(spec.visual_key_prefix):
            visual[full[len(spec.visual_key_prefix) :]] = value
        elif full.startswith(spec.audio_key_prefix):
            audio[full[len(spec.audio_key_prefix) :]] = value
        elif not full.startswith(spec.ignored_key_prefixes):
            unknown.append(key)
    return visual, audio, unknown


def load_selavi(
    checkpoint_path: Path | str | None,
    random_weights: bool = False,
    device: str | torch.device = "cpu",
    seed: int = 0,
    spec: EncoderSpec = SELAVI_VGGSOUND,
    precision: str = "fp32",
) -> SelaviEncoders:
    """Build the SeLaVi encoders and load a checkpoint strictly.

    Args:
        checkpoint_path: SeLaVi checkpoint (``selavi_vgg_sound.pth``); ``None`` requires ``random_weights``.
        random_weights: build encoders initialised from ``seed`` instead (tests and smoke runs only). Ignored
            when a checkpoint is given.
        device: where the modules go.
        seed: seed of the random initialisation.
        spec: encoder spec (key prefixes, expected sha256).
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast of the forwards).

    Returns:
        Both encoders in eval mode.

    Raises:
        CheckpointError: no checkpoint and no ``random_weights``; the file is missing, unreadable, or its keys
            or shapes do not match (the message names the file and lists missing/unexpected keys).
    """
    import torch

    check_precision(precision)
    if checkpoint_path is None and not random_weights:
        raise MissingWeightsError(_missing_weights_message(spec), spec.name, spec.weight_keys)
    # Built before loading even with a checkpoint: the strict load below replaces every parameter and buffer.
    visual, audio = _build_seeded(seed)
    if checkpoint_path is None:
        weights_sha256 = RANDOM_WEIGHTS
        _logger.warning("SeLaVi encoders use RANDOM weights (seed %d): features are meaningless", seed)
    else:
        path = Path(checkpoint_path)
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint file not found. {_missing_weights_message(spec)}")
        weights_sha256 = file_sha256(path)
        if spec.weights_sha256 and weights_sha256 != spec.weights_sha256:
            raise CheckpointError(
                f"{path}: sha256 {weights_sha256} differs from the published {spec.weights_sha256} ({spec.weights_url})"
            )
        state_dict = _read_state_dict(path)
        visual_sd, audio_sd, unknown = split_state_dict(state_dict, spec)
        problems = state_dict_problems("visual", visual, visual_sd) + state_dict_problems("audio", audio, audio_sd)
        if unknown:
            problems.append(f"{len(unknown)} unexpected top-level key(s) {shown_keys(sorted(unknown))}")
        if problems:
            raise CheckpointError(f"{path}: checkpoint does not match the SeLaVi encoders: " + "; ".join(problems))
        visual.load_state_dict(visual_sd, strict=True)
        audio.load_state_dict(audio_sd, strict=True)
        _logger.info("loaded SeLaVi encoders from %s (sha256 %s)", path, weights_sha256)
    torch_device = torch.device(device)
    visual.to(torch_device).eval()
    audio.to(torch_device).eval()
    return SelaviEncoders(
        visual=visual, audio=audio, weights_sha256=weights_sha256, spec=spec, device=torch_device, precision=precision
    )


@register_encoder(SELAVI_VGGSOUND)
def selavi_vggsound(
    weights: Mapping[str, Path | str],
    random_weights: bool = False,
    device: str | torch.device = "cpu",
    seed: int = 0,
    precision: str = "fp32",
) -> SelaviEncoders:
    """Registry builder for the VGG-Sound SeLaVi encoders: ``weights["selavi"]`` is the checkpoint (see
    :func:`load_selavi`)."""
    return load_selavi(
        weights.get("selavi"),
        random_weights=random_weights,
        device=device,
        seed=seed,
        spec=SELAVI_VGGSOUND,
        precision=precision,
    )
