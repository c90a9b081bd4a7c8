"""Encoder weights shared by every encoder set: errors, file hashes, safe readers and the state-dict check.

Readers never run pickled code: torch files go through ``torch.load(weights_only=True)``, safetensors through
``safetensors.torch.load_file``, and TorchScript archives are refused. torch is imported inside functions so that the
registry, which imports :class:`CheckpointError` from here, stays torch-free.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

RANDOM_WEIGHTS = "random"  # the weights_sha256 of seeded random encoders (tests and smoke runs)
_LIST_LIMIT = 8  # keys shown per list in error messages


class CheckpointError(RuntimeError):
    """Encoder weights (a SeLaVi checkpoint, CLIP/CLAP files, packaged weights) are missing, unreadable, or do not
    match the encoders."""


class MissingWeightsError(CheckpointError):
    """An encoder set was asked for without the weight files it needs (and without random weights).

    Attributes:
        encoder: registry name of the encoder set.
        keys: the weight keys that were not given (``EncoderSpec.weight_keys`` order), e.g. ``("clap",)``.
    """

    def __init__(self, message: str, encoder: str, keys: Iterable[str]) -> None:
        super().__init__(message)
        self.encoder = encoder
        self.keys = tuple(keys)


def shown_keys(keys: list[str]) -> str:
    """``keys`` for an error message: ``[a, b, ...]``, at most eight shown."""
    shown = ", ".join(keys[:_LIST_LIMIT])
    return f"[{shown}{', ...' if len(keys) > _LIST_LIMIT else ''}]"


def load_weights_only(path: Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a file that cannot be read is a CheckpointError naming it.

    weights_only: a checkpoint is data; never run pickled code from a downloaded file.
    """
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError) as exc:
        raise CheckpointError(
            f"{path}: cannot read the checkpoint (truncated, corrupt or not a torch file): "
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        ) from exc


TORCHSCRIPT_REFUSAL = "this is a TorchScript archive; avzsl never executes TorchScript"


def read_weights(path: Path, torchscript_refusal: str = TORCHSCRIPT_REFUSAL) -> dict[str, Any]:
    """The state dict of a weights file: safetensors, or a torch file read with ``weights_only=True``.

    An open_clip training checkpoint (``{"state_dict": ...}``) gives its state dict; a leading ``module.`` on every
    key (a model saved inside DistributedDataParallel) is removed.

    Args:
        path: the weights file.
        torchscript_refusal: the message (after ``"{path}: "``) when ``path`` is a TorchScript archive; an encoder
            says there which file to download instead.

    Raises:
        CheckpointError: unreadable file, a TorchScript archive, or not a state dict of tensors.
    """
    import torch
    from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: cannot read the safetensors file: {exc}") from exc
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any(n.endswith("constants.pkl") or "/code/" in n for n in archive.namelist()):
                raise CheckpointError(f"{path}: {torchscript_refusal}")
    ckpt = load_weights_only(path)
    if isinstance(ckpt, dict) and isinstance(ckpt.get("state_dict"), dict):
        ckpt = ckpt["state_dict"]  # an open_clip training checkpoint
    if not isinstance(ckpt, dict) or not all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors (got {type(ckpt).__name__})")
    if ckpt and all(k.startswith("module.") for k in ckpt):
        consume_prefix_in_state_dict_if_present(ckpt, "module.")  # in place, key order kept
    return ckpt


def state_dict_problems(name: str, module: nn.Module, weights: dict[str, Any]) -> list[str]:
    """Problems (missing, unexpected, wrong shape) of loading ``weights`` into ``module``; empty when none.

    Args:
        name: what the messages call the module (``"visual"``, ``"CLIP"``, a file path).
        module: the network the weights are for.
        weights: the state dict to load.

    Returns:
        One line per kind of problem, each naming at most eight keys.
    """
    expected = module.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    wrong_shape = sorted(
        f"{k} {list(weights[k].shape)} != {list(expected[k].shape)}"
        for k in set(expected) & set(weights)
        if getattr(weights[k], "shape", None) != expected[k].shape
    )
    problems = []
    if missing:
        problems.append(f"{name}: {len(missing)} missing key(s) {shown_keys(missing)}")
    if unexpected:
        problems.append(f"{name}: {len(unexpected)} unexpected key(s) {shown_keys(unexpected)}")
    if wrong_shape:
        problems.append(f"{name}: {len(wrong_shape)} key(s) with the wrong shape {shown_keys(wrong_shape)}")
    return problems
