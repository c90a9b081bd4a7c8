"""Window decoding interface: a video file in, a stream of 1-s audio-visual windows out.

``get_decoder(name)`` returns a ``WindowDecoder``; ``decoder.iter_windows(path, schedule)`` yields ``Window``s in
time order. Two implementations: ``"pyav"`` (default, ``extractors/decode/pyav_decoder.py``) and ``"decord"``
(video frames through decord 0.6.0, audio still through PyAV, ``extractors/decode/decord_decoder.py``). decord is
imported in ``get_decoder`` only, so importing this module never needs it.

The shared types and the frame selection rule live in ``extractors/decode/base.py`` and are re-exported here, so
``from avzsl.extractors.decode import Window`` works.
"""

from __future__ import annotations

from collections.abc import Callable

from avzsl.extractors.decode.base import (
    DEFAULT_MAX_ASPECT,
    DEFAULT_MAX_SHORT_SIDE,
    MAX_START_TOL_S,
    START_TOL_FRAMES,
    DecodeError,
    Window,
    WindowDecoder,
    bounded_size,
    check_schedule,
    crop_to_aspect,
    rotate_frames,
    select_frame_indices,
    start_tolerance_s,
    window_end,
)
from avzsl.extractors.decode.pyav_decoder import PyAVDecoder

__all__ = [
    "DEFAULT_MAX_ASPECT",
    "DEFAULT_MAX_SHORT_SIDE",
    "MAX_START_TOL_S",
    "START_TOL_FRAMES",
    "DecodeError",
    "Window",
    "WindowDecoder",
    "available_decoders",
    "bounded_size",
    "check_schedule",
    "crop_to_aspect",
    "get_decoder",
    "register_decoder",
    "rotate_frames",
    "select_frame_indices",
    "start_tolerance_s",
    "window_end",
]

_REGISTRY: dict[str, Callable[..., WindowDecoder]] = {}


def register_decoder(name: str) -> Callable:
    """Decorator registering a decoder factory under ``name``."""

    def deco(factory: Callable[..., WindowDecoder]) -> Callable[..., WindowDecoder]:
        _REGISTRY[name] = factory
        return factory

    return deco


@register_decoder("pyav")
def _make_pyav(**kwargs) -> WindowDecoder:
    return PyAVDecoder(**kwargs)


@register_decoder("decord")
def _make_decord(**kwargs) -> WindowDecoder:
    # Lazy: decord is an optional extra (pip install avzsl[decord]); importing the registry must not need it.
    from avzsl.extractors.decode.decord_decoder import DecordDecoder

    return DecordDecoder(**kwargs)


def available_decoders() -> list[str]:
    """Registered decoder names."""
    return sorted(_REGISTRY)


def get_decoder(name: str = "pyav", **kwargs) -> WindowDecoder:
    """Build the decoder registered as ``name`` (``"pyav"`` or ``"decord"``); kwargs go to its constructor.

    Raises:
        ValueError: unknown name.
        ImportError: decord requested but not installed (``pip install avzsl[decord]``).
    """
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown decoder {name!r}; available: {available_decoders()}") from None
    return factory(**kwargs)
