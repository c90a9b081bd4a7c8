"""Encoder registry: named encoder builders plus the input contract and provenance of each (timm style).

A registered encoder is a builder function together with a frozen :class:`EncoderSpec`. The spec is what the
decoders must produce (frame rate, window length, frame size, normalisation, audio sample rate, filter-bank
parameters) and where the weights come from. It is JSON-serialisable, and :meth:`EncoderSpec.spec_hash` is
what the feature cache records, so a change to any field invalidates cached features.

This module imports no torch: listing encoders and hashing specs stays cheap. Built-in encoders live in
:mod:`avzsl.extractors.encoders.selavi`, :mod:`avzsl.extractors.encoders.clip_clap` and
:mod:`avzsl.extractors.encoders.packaged`, imported on first use.

The first fields of :class:`EncoderSpec` are those of the SeLaVi spec. Fields added later (the ``EXTENDED_FIELDS``,
for encoders such as CLIP/CLAP whose inputs are not a 30-frame clip and a filter bank) have defaults and are left
out of :meth:`EncoderSpec.to_json` while they hold their default, so the SeLaVi spec hash, and with it every
existing SeLaVi cache, is unchanged. The ``LOADER_FIELDS`` say how a set is built and used (which weight files it
takes, whether it has text towers), not what its features are: they are never hashed or serialised.

:func:`build_encoder` is how callers build a set: ``build_encoder(name, weights, random_weights, device=...)``
where ``weights`` maps the spec's ``weight_keys`` to files, e.g. ``{"selavi": path}`` or ``{"clip": ..., "clap": ...}``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from avzsl.extractors.encoders.weights import CheckpointError

_logger = logging.getLogger(__name__)

DEFAULT_ENCODER = "selavi_vggsound"

# Modules whose import registers built-in encoders. Imported on first lookup, not here: they import this module to
# register, and importing the registry (the CLIs do, before --help) must not import numpy.
_BUILTIN_MODULES = (
    "avzsl.extractors.encoders.selavi", "avzsl.extractors.encoders.clip_clap", "avzsl.extractors.encoders.packaged")

_Builder = TypeVar("_Builder", bound=Callable[..., Any])


@dataclass(frozen=True)
class EncoderSpec:
    """Input contract and provenance of an audio-visual encoder pair.

    Attributes:
        name: registry name.
        visual_arch: visual network (torchvision name).
        audio_arch: audio network.
        out_dim: feature size of each modality, ``(B, out_dim)``.
        window_seconds: length of one window; one feature vector per window and modality.
        frames_per_window: frames sampled per window (the visual input is ``(B, 3, T, H, W)`` with this T).
        frame_size: square crop side H = W after resizing the short side to this size.
        resize_short_side: short side of the frame before the center crop.
        pixel_mean: subtracted from RGB values scaled to [0, 1] (same for all channels).
        pixel_std: divides after the mean is subtracted.
        audio_sample_rate: mono audio is resampled to this rate (Hz).
        audio_int16_scale: True when samples are int16 values (not scaled to [-1, 1]), as SeLaVi used.
        fbank_filters: log mel filter-bank channels (the audio input is ``(B, 1, fbank_filters, fbank_frames)``).
        fbank_frames: filter-bank frames per window.
        fbank_win_seconds: analysis window length.
        fbank_hop_seconds: hop between analysis windows.
        fbank_nfft: FFT size.
        fbank_preemph: pre-emphasis coefficient.
        fbank_window: analysis window function.
        audio_mean: subtracted from the log filter-bank energies.
        audio_std: divides after the mean is subtracted.
        weights_file: checkpoint file name the loader expects by default.
        weights_url: where the checkpoint is published.
        weights_sha256: sha256 of the published checkpoint, or "" when not recorded.
        visual_key_prefix: prefix of the visual encoder's keys in the checkpoint's state dict.
        audio_key_prefix: prefix of the audio encoder's keys.
        ignored_key_prefixes: checkpoint keys that are not part of the encoders (projection heads).
        source: where the architecture and weights are described.
        licence: licence of the weights.
        visual_dim: visual feature size when it differs from ``out_dim`` (0: ``out_dim``).
        audio_dim: audio feature size when it differs from ``out_dim`` (0: ``out_dim``).
        visual_recipe: frame selection and preprocessing in words, when not the SeLaVi clip recipe.
        pixel_mean_rgb: per-channel mean (R, G, B) of RGB values in [0, 1]; then ``pixel_mean`` is unused (0).
        pixel_std_rgb: per-channel std (R, G, B).
        interpolation: resize interpolation ("" = SeLaVi's bilinear without antialias).
        video_pooling: per-video visual feature from the window features: "" = mean over windows, "middle" =
            the middle window's feature (the recipe's single middle frame).
        audio_recipe: audio preprocessing in words, when not the SeLaVi filter bank.
        audio_clip_seconds: length of the encoder's audio input (a shorter window is repeat-padded to it).
        audio_weights_file: file name of a separate audio checkpoint ("" when one file holds both encoders).
        audio_weights_url: where that audio checkpoint is published.
        packaged_weights: the weights are data files of installed Python packages (no checkpoint option).
        weight_keys: the keys of the weight files the set takes in :func:`build_encoder` (``("selavi",)``,
            ``("clip", "clap")``; ``()`` for packaged weights). Not hashed, not serialised, not compared.
        text_towers: the set has text towers (CLIP/CLAP) that embed class names, so callers embed through them by
            default instead of word vectors. Not hashed, not serialised, not compared.
    """

    name: str
    visual_arch: str
    audio_arch: str
    out_dim: int
    window_seconds: float
    frames_per_window: int
    frame_size: int
    resize_short_side: int
    pixel_mean: float
    pixel_std: float
    audio_sample_rate: int
    audio_int16_scale: bool
    fbank_filters: int
    fbank_frames: int
    fbank_win_seconds: float
    fbank_hop_seconds: float
    fbank_nfft: int
    fbank_preemph: float
    fbank_window: str
    audio_mean: float
    audio_std: float
    weights_file: str
    weights_url: str
    weights_sha256: str
    visual_key_prefix: str
    audio_key_prefix: str
    ignored_key_prefixes: tuple[str, ...]
    source: str
    licence: str
    # -- extended fields: omitted from the hash while at their default (see the module docstring) --
    visual_dim: int = 0
    audio_dim: int = 0
    visual_recipe: str = ""
    pixel_mean_rgb: tuple[float, ...] = ()
    pixel_std_rgb: tuple[float, ...] = ()
    interpolation: str = ""
    video_pooling: str = ""
    audio_recipe: str = ""
    audio_clip_seconds: float = 0.0
    audio_weights_file: str = ""
    audio_weights_url: str = ""
    packaged_weights: bool = False
    # -- loader fields: how to build and use the set, not what its features are (see LOADER_FIELDS) --
    weight_keys: tuple[str, ...] = field(default=(), compare=False)
    text_towers: bool = field(default=False, compare=False)

    @property
    def visual_feature_dim(self) -> int:
        """D_V of one visual feature vector."""
        return self.visual_dim or self.out_dim

    @property
    def audio_feature_dim(self) -> int:
        """D_A of one audio feature vector."""
        return self.audio_dim or self.out_dim

    @property
    def visual_input_shape(self) -> tuple[int, int, int, int]:
        """Per-sample visual input ``(3, T, H, W)``."""
        return (3, self.frames_per_window, self.frame_size, self.frame_size)

    @property
    def audio_input_shape(self) -> tuple[int, int, int]:
        """Per-sample audio input ``(1, n_filters, n_frames)``."""
        return (1, self.fbank_filters, self.fbank_frames)

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain JSON types (tuples become lists)."""
        return json.loads(self.to_json())

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace): the input of :meth:`spec_hash`.

        Extended fields at their default are left out, so specs written before they existed hash as before; loader
        fields are always left out (they do not change the features).
        """
        values = dataclasses.asdict(self)
        for f in dataclasses.fields(self):
            if f.name in LOADER_FIELDS or (
                f.name in EXTENDED_FIELDS and values[f.name] in (f.default, _as_json_default(f.default))
            ):
                del values[f.name]
        return json.dumps(values, sort_keys=True, separators=(",", ":"))

    def spec_hash(self, length: int = 16) -> str:
        """First ``length`` hex digits of the sha256 of :meth:`to_json`."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()[:length]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderSpec:
        """Inverse of :meth:`to_dict`; unknown keys are an error so that a newer spec is never half-read.

        The loader fields are not in :meth:`to_dict`, so they take their defaults unless ``data`` has them.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown EncoderSpec field(s): {unknown}")
        values = dict(data)
        for name in ("ignored_key_prefixes", "pixel_mean_rgb", "pixel_std_rgb", "weight_keys"):
            values[name] = tuple(values.get(name, ()))
        return cls(**values)


# Fields added after the SeLaVi spec; hashed only when set (keeps SeLaVi's spec hash and caches valid).
EXTENDED_FIELDS = frozenset(
    {
        "visual_dim",
        "audio_dim",
        "visual_recipe",
        "pixel_mean_rgb",
        "pixel_std_rgb",
        "interpolation",
        "video_pooling",
        "audio_recipe",
        "audio_clip_seconds",
        "audio_weights_file",
        "audio_weights_url",
        "packaged_weights",
    }
)


# Fields that say how a set is built and used, not what its features are: never hashed, serialised or compared.
LOADER_FIELDS = frozenset({"weight_keys", "text_towers"})


def _as_json_default(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class _Entry:
    spec: EncoderSpec
    builder: Callable[..., Any]


_REGISTRY: dict[str, _Entry] = {}
_builtins_loaded = False


def register_encoder(spec: EncoderSpec) -> Callable[[_Builder], _Builder]:
    """Decorator registering ``builder`` under ``spec.name``.

    The builder is called by :func:`build_encoder` as ``builder(weights, random_weights, **options)``, with
    ``weights`` holding only keys of ``spec.weight_keys``, and must return the encoders (for SeLaVi a
    :class:`avzsl.extractors.encoders.selavi.SelaviEncoders`).

    Raises:
        ValueError: when the name is already registered with a different spec.
    """

    def decorate(builder: _Builder) -> _Builder:
        existing = _REGISTRY.get(spec.name)
        if existing is not None and existing.spec != spec:
            raise ValueError(f"encoder {spec.name!r} is already registered with a different spec")
        _REGISTRY[spec.name] = _Entry(spec=spec, builder=builder)
        return builder

    return decorate


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
        _builtins_loaded = True


def list_encoders() -> list[str]:
    """Names of all registered encoders, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_encoder_spec(name: str = DEFAULT_ENCODER) -> EncoderSpec:
    """The spec registered under ``name``.

    Raises:
        KeyError: unknown name; the message lists the known ones.
    """
    _load_builtins()
    if name not in _REGISTRY:
        raise KeyError(f"unknown encoder {name!r}; registered: {', '.join(sorted(_REGISTRY)) or 'none'}")
    return _REGISTRY[name].spec


def build_encoder(
    name: str = DEFAULT_ENCODER,
    weights: Mapping[str, Path | str] | None = None,
    random_weights: bool = False,
    **options: Any,
) -> Any:
    """Build the encoder set registered under ``name``.

    Args:
        name: registry name.
        weights: weight files by key, keys from the spec's ``weight_keys`` (``{"selavi": path}``,
            ``{"clip": file, "clap": folder}``); ``None`` or ``{}`` when none are given.
        random_weights: seeded random weights for every file not given (tests and smoke runs only).
        options: passed to the builder: ``device``, ``seed``, ``precision``, and builder-specific ones.

    Raises:
        KeyError: unknown name.
        CheckpointError: weights for a key the set does not take; the builder's own errors (a file missing or
            not matching, no weights and no ``random_weights``).
    """
    spec = get_encoder_spec(name)
    given = dict(weights or {})
    foreign = [key for key in given if key not in spec.weight_keys]
    if foreign:
        if spec.packaged_weights:
            takes = "its weights from installed packages"
        else:
            takes = f"weights for {', '.join(spec.weight_keys) or 'nothing'}"
        raise CheckpointError(f"encoder {name} takes {takes}; got {', '.join(foreign)}")
    _logger.debug("building encoder %s", name)
    return _REGISTRY[name].builder(given, random_weights, **options)
