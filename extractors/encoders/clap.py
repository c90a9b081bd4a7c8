"""CLAP (LAION-CLAP HTSAT, through ``transformers``' ``ClapModel``): audio tower and text tower, 512-d each.

Why ``transformers``: the ``laion-clap`` and ``msclap`` packages pin numpy < 2, which the pinned stack
(numpy 2.x beside torch 2.14.1) cannot take; ``transformers`` 5.24.0 installs beside it without replacing
torch/torchvision/numpy and its ``ClapModel`` loads the LAION-CLAP checkpoints published in the Hugging Face format
(``laion/clap-htsat-unfused``: ``config.json``, ``model.safetensors`` or ``pytorch_model.bin``, the RoBERTa tokenizer
files and ``preprocessor_config.json``). The user downloads that folder and passes it as ``--clap-checkpoint``;
nothing is fetched at run time (every ``from_pretrained`` here reads a local folder).

Audio input: a decoded 1-s mono window (int16 at 44.1 kHz) is scaled to [-1, 1], resampled to 48 kHz
(``torchaudio.functional.resample``), and turned by ``ClapFeatureExtractor`` into the 10-s log-mel input the model
was trained on (the short window is repeated to fill 10 s: ``padding="repeatpad"``; 64 mel bins, hop 480). The
audio embedding is the projected, L2-normalised ``get_audio_features`` output.

The ClipClap-GZSL recipe itself uses the WavCaps HTSAT-BERT checkpoint (32 kHz, a 10-s centre crop, 1024-d);
its ``ASE`` model code is not packaged anywhere installable, so avzsl uses the LAION-CLAP HTSAT checkpoints here
(docs/encoders.md).
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avzsl.extractors.encoders.precision import autocast, check_precision
from avzsl.extractors.encoders.weights import (
    RANDOM_WEIGHTS,
    TORCHSCRIPT_REFUSAL,
    CheckpointError,
    read_weights,
    state_dict_problems,
)
from avzsl.hashing import file_sha256

if TYPE_CHECKING:
    import torch
    from torch import nn

_logger = logging.getLogger(__name__)

WEIGHTS_FOLDER_URL = "https://huggingface.co/laion/clap-htsat-unfused/tree/main"
WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")
CONFIG_FILE = "config.json"
CLAP_ADVICE = f"Download the folder {WEIGHTS_FOLDER_URL}"  # what to get instead of an unusable file
DECODED_RATE = 44100
CLAP_RATE = 48000
# Buffers that transformers rebuilds deterministically from the config; old checkpoints may or may not hold them.
_DERIVED_BUFFERS = ("position_ids", "relative_position_index", "token_type_ids")
# transformers' ClapFeatureExtractor settings for the unfused HTSAT models (no fusion: one mel channel).
DEFAULT_FEATURE_CONFIG: dict[str, Any] = {"truncation": "rand_trunc", "padding": "repeatpad"}


def _feature_extractor(config: dict[str, Any]) -> Any:
    from transformers import ClapFeatureExtractor

    values = {k: v for k, v in config.items() if not k.startswith("_") and k != "feature_extractor_type"}
    return ClapFeatureExtractor(**values)


@dataclass
class ClapAudioTransform:
    """Decoded window -> CLAP input (picklable for decode workers).

    ``__call__(audio int16-valued (44100,)) -> float32 (1, 1001, 64)`` log-mel (``(4, 1001, 64)`` for fused
    models), per ``feature_config`` (the checkpoint's ``preprocessor_config.json``).
    """

    feature_config: dict[str, Any]

    def __post_init__(self) -> None:
        self._extractor: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"feature_config": self.feature_config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.feature_config = state["feature_config"]
        self._extractor = None

    def __call__(self, audio: np.ndarray) -> torch.Tensor:
        import torch
        import torchaudio.functional as AF

        if self._extractor is None:
            self._extractor = _feature_extractor(self.feature_config)
        x = torch.as_tensor(np.asarray(audio), dtype=torch.float32)
        if x.ndim != 1:
            raise ValueError(f"audio must be (L,), got {tuple(x.shape)}")
        wave = AF.resample(x / 32768.0, DECODED_RATE, CLAP_RATE).numpy()
        rate = int(self._extractor.sampling_rate)
        if rate != CLAP_RATE:
            wave = AF.resample(torch.from_numpy(wave), CLAP_RATE, rate).numpy()
        features = self._extractor([wave], sampling_rate=rate, return_tensors="np")["input_features"]
        return torch.from_numpy(np.ascontiguousarray(features[0], dtype=np.float32))


@dataclass
class ClapTower:
    """A loaded ``ClapModel`` (eval mode) with its tokenizer and feature-extractor settings.

    Attributes:
        model: ``transformers.ClapModel``.
        tokenizer: the checkpoint's RoBERTa tokenizer (local files).
        feature_config: ``ClapFeatureExtractor`` settings.
        weights_sha256: sha256 of the weights file, or ``"random"``.
        config: the model's ``ClapConfig`` as a dict.
        device: where the model lives.
        precision: ``fp32``, ``bf16`` or ``fp16`` autocast.
    """

    model: nn.Module
    tokenizer: Any
    feature_config: dict[str, Any]
    weights_sha256: str
    config: dict[str, Any]
    device: torch.device
    precision: str = "fp32"
    weights_path: str | None = None

    @property
    def embed_dim(self) -> int:
        """Size of the joint embedding (512 for the LAION-CLAP models)."""
        return int(self.model.config.projection_dim)

    def _normalised(self, out: Any) -> torch.Tensor:
        out = (out.pooler_output if hasattr(out, "pooler_output") else out).float()
        return (out / out.norm(dim=-1, keepdim=True).clamp_min(1e-12)).cpu()

    def encode_audio(self, features: torch.Tensor) -> torch.Tensor:
        """``(B, 1, 1001, 64)`` log-mel (from :class:`ClapAudioTransform`) -> ``(B, embed_dim)`` L2-normalised."""
        import torch

        if features.ndim != 4:
            raise ValueError(f"CLAP audio input must be (B, C, frames, mels), got {tuple(features.shape)}")
        is_longer = torch.zeros(features.shape[0], 1, dtype=torch.bool, device=self.device)
        with torch.inference_mode(), autocast(self.device, self.precision):
            out = self.model.get_audio_features(input_features=features.float().to(self.device), is_longer=is_longer)
        return self._normalised(out)

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """``N`` prompts -> ``(N, embed_dim)`` L2-normalised text embeddings."""
        import torch

        tokens = self.tokenizer(list(prompts), padding=True, truncation=True, max_length=77, return_tensors="pt")
        tokens = {k: v.to(self.device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
        with torch.inference_mode(), autocast(self.device, self.precision):
            out = self.model.get_text_features(**tokens)
        return self._normalised(out)

    def window_transform(self) -> ClapAudioTransform:
        """The per-window input transform matching this model."""
        return ClapAudioTransform(dict(self.feature_config))

    def provenance(self) -> dict[str, Any]:
        """JSON description: weights, configuration summary, feature-extractor settings."""
        audio = self.config.get("audio_config", {})
        return {
            "model": "transformers ClapModel",
            "weights_sha256": self.weights_sha256,
            "weights_file": Path(self.weights_path).name if self.weights_path else None,
            "projection_dim": self.embed_dim,
            "enable_fusion": bool(audio.get("enable_fusion", False)),
            "audio_depths": list(audio.get("depths", [])),
            "text_layers": self.config.get("text_config", {}).get("num_hidden_layers"),
            "feature_config": self.feature_config,
        }


def byte_level_tokenizer(folder: Path) -> Any:
    """A RoBERTa tokenizer over the 256 byte symbols only (no merges), written to ``folder`` and loaded.

    Used with ``--random-weights`` when no CLAP folder (with the real tokenizer files) is given: the random text
    tower needs token ids, and no vocabulary may be downloaded. Ids stay below RoBERTa's vocabulary size.
    """
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import RobertaTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for symbol in sorted(ByteLevel.alphabet()):
        vocab.setdefault(symbol, len(vocab))
    vocab["<mask>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return RobertaTokenizer(vocab=vocab, merges=[])


def _weights_file(folder: Path) -> Path:
    for name in WEIGHTS_FILES:
        if (folder / name).is_file():
            return folder / name
    raise CheckpointError(
        f"{folder}: no CLAP weights file ({' or '.join(WEIGHTS_FILES)}); download the folder {WEIGHTS_FOLDER_URL}"
    )


def _strict_check(path: Path, model: nn.Module, weights: dict[str, Any]) -> dict[str, Any]:
    """``weights`` if they match ``model`` (derived buffers may be absent or extra); CheckpointError otherwise."""
    expected = model.state_dict()
    derived = {k for k in set(expected) | set(weights) if k.rsplit(".", 1)[-1] in _DERIVED_BUFFERS}
    weights = {k: v for k, v in weights.items() if k not in derived or k in expected}
    filled = {**{k: expected[k] for k in derived if k in expected and k not in weights}, **weights}
    problems = state_dict_problems("CLAP", model, filled)
    if problems:
        raise CheckpointError(f"{path}: checkpoint does not match transformers ClapModel: " + "; ".join(problems))
    return filled


def load_clap(
    checkpoint: Path | str | None,
    random_weights: bool = False,
    device: str | torch.device = "cpu",
    seed: int = 0,
    precision: str = "fp32",
    config: dict[str, Any] | None = None,
    scratch_dir: Path | None = None,
) -> ClapTower:
    """Build ``ClapModel`` and load a local checkpoint folder strictly.

    Args:
        checkpoint: folder with ``config.json``, ``model.safetensors`` or ``pytorch_model.bin``, the tokenizer
            files (``vocab.json``, ``merges.txt``) and optionally ``preprocessor_config.json``; or the weights file
            inside such a folder. ``None`` requires ``random_weights``.
        random_weights: seeded random weights (tests and smoke runs only); ignored when a checkpoint is given.
        device: where the model goes.
        seed: seed of the random initialisation.
        precision: ``fp32``, ``bf16`` or ``fp16``.
        config: ``ClapConfig`` dict for random weights (default: transformers' defaults, the HTSAT-unfused layout).
        scratch_dir: where the byte-level tokenizer of random weights is written (default: a temporary folder).

    Raises:
        CheckpointError: nothing given; the folder lacks files; the weights are unreadable or their keys/shapes
            differ from the model's (the message names the file and the missing/unexpected keys).
    """
    import torch
    from transformers import ClapConfig, ClapModel

    check_precision(precision)
    if checkpoint is None and not random_weights:
        raise CheckpointError(
            f"no CLAP checkpoint given: download the folder {WEIGHTS_FOLDER_URL} and pass its path "
            "(docs/encoders.md); random_weights=True builds seeded random encoders for tests only"
        )
    folder = weights = None
    if checkpoint is not None:
        given = Path(checkpoint)
        folder = given if given.is_dir() else given.parent
        if not folder.is_dir() or not (given.is_dir() or given.is_file()):
            raise CheckpointError(f"{given}: CLAP checkpoint folder not found (docs/encoders.md)")
        weights = given if given.is_file() else _weights_file(folder)
        if not (folder / CONFIG_FILE).is_file():
            raise CheckpointError(f"{folder}: no {CONFIG_FILE} beside the CLAP weights ({WEIGHTS_FOLDER_URL})")
        try:
            clap_config = ClapConfig.from_json_file(str(folder / CONFIG_FILE))
        except (OSError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{folder / CONFIG_FILE}: not a ClapConfig: {exc}") from exc
    else:
        clap_config = ClapConfig(**config) if config else ClapConfig()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ClapModel(clap_config)
    feature_config = dict(DEFAULT_FEATURE_CONFIG)
    if folder is None:
        sha = RANDOM_WEIGHTS
        _logger.warning("CLAP uses RANDOM weights (seed %d): features are meaningless", seed)
        tokenizer = byte_level_tokenizer(scratch_dir or Path(tempfile.mkdtemp(prefix="avzsl-clap-tok-")))
    else:
        sha = file_sha256(weights)
        state = _strict_check(weights, model, read_weights(weights, f"{TORCHSCRIPT_REFUSAL}. {CLAP_ADVICE}"))
        model.load_state_dict(state, strict=True)
        tokenizer = _load_tokenizer(folder)
        preprocessor = folder / "preprocessor_config.json"
        if preprocessor.is_file():
            try:
                feature_config = json.loads(preprocessor.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise CheckpointError(f"{preprocessor}: not JSON: {exc}") from exc
        _logger.info("loaded CLAP from %s (sha256 %s)", weights, sha)
    torch_device = torch.device(device)
    model.to(torch_device).eval()
    return ClapTower(
        model, tokenizer, feature_config, sha, clap_config.to_dict(), torch_device, precision,
        str(weights) if weights else None,
    )


def _load_tokenizer(folder: Path) -> Any:
    from transformers import RobertaTokenizer

    has_files = (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file()
    if not (has_files or (folder / "tokenizer.json").is_file()):
        raise CheckpointError(
            f"{folder}: the CLAP tokenizer files (vocab.json and merges.txt, or tokenizer.json) are missing"
        )
    try:
        # A local folder only: local_files_only makes a missing file an error instead of a download.
        return RobertaTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{folder}: cannot load the CLAP tokenizer: {exc}") from exc
