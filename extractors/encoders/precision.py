"""Numeric precision of encoder forwards: ``fp32`` (default), ``bf16`` or ``fp16`` autocast.

fp32 gives the features of the official fp32 extraction code; the reduced precisions run the encoders under
``torch.autocast`` (on CUDA, and on CPU where torch supports it) and store float32 features. The precision is part
of the cache identity (``cache.json`` ``extraction.precision``), so caches of different precisions never mix.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PRECISIONS = ("fp32", "bf16", "fp16")
# What avzsl before the --precision option did: bf16 autocast on CUDA, plain fp32 elsewhere. Used to read
# caches written before the option existed (their cache.json has no precision).
LEGACY_CUDA_PRECISION = "bf16"


def check_precision(precision: str) -> str:
    """``precision`` if known; ``ValueError`` naming the choices otherwise."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    return precision


def legacy_precision(device: str) -> str:
    """The precision an extraction without the option ran at on ``device`` (``cuda...``: bf16, else fp32)."""
    return LEGACY_CUDA_PRECISION if str(device).startswith("cuda") else "fp32"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """Context for one encoder forward: a no-op for fp32, ``torch.autocast(device.type, dtype)`` otherwise."""
    import torch

    check_precision(precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)
