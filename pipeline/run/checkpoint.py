"""Atomic, safe-to-load training checkpoints.

A checkpoint is written with ``torch.save`` to a temporary file beside its final name and renamed into place, so a
SIGKILL leaves either the previous checkpoint or the new one. Loading uses ``weights_only=True``: a checkpoint can
only hold tensors, numbers, strings, lists and dicts, never arbitrary pickled objects. Every checkpoint carries
``content_sha256``, the SHA-256 of its payload (tensor bytes included, ``integrity.value_digest``), written inside
the same file; loading recomputes it, so a flipped bit in the weights is an error naming the file, not a model that
quietly gives other numbers.

Before the checksum touches a tensor, every tensor of a loaded checkpoint is checked against its storage: a tensor
can be a view of far fewer stored elements than its shape has (one float expanded to 10^6 x 10^6 with zero
strides is a 9 MB file and a 4 TB tensor once made contiguous). Nothing avzsl saves is such a view, so a tensor
whose elements outnumber its storage is refused, naming the file and the tensor, before anything is materialised.

The checkpoint is serialised in memory and written with ordinary file I/O: a full disk is then an ``OSError``
(``ENOSPC``) naming the file, which the command-line tools report in one line ("disk full while writing ..."),
instead of torch's ``RuntimeError`` from ``inline_container.cc``; the previous checkpoint stays in place.
"""

from __future__ import annotations

import io
import logging
import pickle
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avzsl.pipeline.core.atomic import atomic_write
from avzsl.pipeline.core.checksums import CHECKSUM_KEY, value_digest
from avzsl.pipeline.core.errors import CheckpointCorruptError  # noqa: F401 - defined there (cheap for CLIs)

_logger = logging.getLogger(__name__)


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` atomically, with its content checksum (``content_sha256``) inside."""
    checked = {**payload, CHECKSUM_KEY: value_digest(payload)}
    buffer = io.BytesIO()
    torch.save(checked, buffer)
    atomic_write(Path(path), lambda tmp: tmp.write_bytes(buffer.getbuffer()))


def _check_storage_sizes(value: Any, path: Path, rerun: str, where: str = "") -> None:
    """Refuse any tensor in a loaded payload whose elements outnumber the storage it views (nothing is copied)."""
    if isinstance(value, torch.Tensor):
        if value.layout != torch.strided:
            raise CheckpointCorruptError(f"{path}: tensor {where or '<root>'} has layout {value.layout}, which avzsl "
                                         f"never saves; {rerun}")
        size = value.element_size()
        stored = value.untyped_storage().nbytes() - value.storage_offset() * size
        if value.numel() * size > stored:
            raise CheckpointCorruptError(
                f"{path}: tensor {where or '<root>'} of shape {tuple(value.shape)} has {value.numel()} elements but "
                f"its storage holds {max(stored, 0) // size} (a view expanded beyond its data), so it is not a "
                f"checkpoint avzsl wrote; {rerun}"
            )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_storage_sizes(item, path, rerun, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_storage_sizes(item, path, rerun, f"{where}[{i}]")


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``, check every tensor against its storage, verify its checksum.

    Checkpoints written before checksums existed (no ``content_sha256``) are loaded as they are (storage-checked).

    Raises:
        CheckpointCorruptError: the file does not load, holds a tensor larger than its storage, or its content
            differs from what was written; the message names the file and what to rerun.
    """
    path = Path(path)
    rerun = f"delete {path} and rerun avzsl-train with the same arguments to rebuild it"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, OSError, ValueError) as exc:
        raise CheckpointCorruptError(f"{path}: checkpoint is corrupt or truncated ({exc}); {rerun}") from exc
    if not isinstance(state, dict):
        raise CheckpointCorruptError(f"{path}: not an avzsl checkpoint (holds a {type(state).__name__}); {rerun}")
    _check_storage_sizes(state, path, rerun)
    stored = state.pop(CHECKSUM_KEY, None)
    if stored is not None and value_digest(state) != stored:
        raise CheckpointCorruptError(f"{path}: checksum mismatch (the file changed after it was written); {rerun}")
    return state


def rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random state a training step consumes: the sampler's generator, torch's global RNG (dropout),
    Python's and NumPy's (for completeness), and CUDA's when present."""
    state: dict[str, Any] = {
        "sampler": generator.get_state(),
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]),
        "python_version": random.getstate()[0],
        "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
        "numpy_pos": int(np.random.get_state()[2]),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(generator: torch.Generator, state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    generator.set_state(state["sampler"])
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), None))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
