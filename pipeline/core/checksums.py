"""Content checksums for the artifacts a later stage trusts.

Every checksum is SHA-256 (hashlib, ~1.5 GB/s on one core here; ``bench/checksum_cost.py`` measures what it costs
a cache read). Digests are computed over the *content* (array dtype, shape and bytes; strings as UTF-8 JSON), not
over file bytes, so they can be stored inside the file they describe (HDF5 attributes, a key of a JSON file or of a
checkpoint's payload) and are written atomically with it. A mismatch raises :class:`IntegrityError` naming the file
and what to rerun. The digest of a file's bytes (files another program wrote) is :func:`avzsl.hashing.file_sha256`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from avzsl.pipeline.core.atomic import atomic_write_text
from avzsl.pipeline.core.safe_read import UnreadableFileError, read_json_file

_logger = logging.getLogger(__name__)

CHECKSUM_KEY = "content_sha256"


class IntegrityError(RuntimeError):
    """A file's content does not match the checksum written with it (it changed after it was written)."""


# --------------------------------------------------------------------------------------------------------------
# digests


def _update_array(digest: Any, array: np.ndarray) -> None:
    array = np.ascontiguousarray(array)
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(memoryview(array).cast("B") if array.size else b"")


def array_digest(array: np.ndarray) -> str:
    """SHA-256 of a numeric array ``(...)``: dtype, shape and bytes in C order."""
    digest = hashlib.sha256()
    _update_array(digest, np.asarray(array))
    return digest.hexdigest()


def strings_digest(values: Iterable[str]) -> str:
    """SHA-256 of a list of strings (JSON-encoded, so lone surrogates are hashed too)."""
    return hashlib.sha256(json.dumps(list(values)).encode()).hexdigest()


def value_digest(value: Any) -> str:
    """SHA-256 of a nested checkpoint payload: dicts (sorted keys), lists/tuples, tensors, arrays and scalars."""
    digest = hashlib.sha256()
    _update_value(digest, value)
    return digest.hexdigest()


def _update_value(digest: Any, value: Any) -> None:
    torch = sys.modules.get("torch")  # not imported here: CSV writers use this module without torch
    if torch is not None and isinstance(value, torch.Tensor):
        digest.update(b"T")
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
        if tensor.numel():
            # Through uint8 so every dtype (bfloat16, bool, complex) hashes its raw bytes.
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, np.ndarray):
        digest.update(b"A")
        _update_array(digest, value)
    elif isinstance(value, Mapping):
        digest.update(b"{")
        for key in sorted(value, key=repr):
            digest.update(repr(key).encode("utf-8", "backslashreplace"))
            _update_value(digest, value[key])
        digest.update(b"}")
    elif isinstance(value, list | tuple):
        digest.update(b"[" if isinstance(value, list) else b"(")
        for item in value:
            _update_value(digest, item)
        digest.update(b"]")
    else:
        digest.update(repr(value).encode("utf-8", "backslashreplace"))


# --------------------------------------------------------------------------------------------------------------
# JSON files that carry their own checksum


def json_with_checksum(payload: Mapping[str, Any]) -> str:
    """``payload`` as indented JSON with ``content_sha256`` = SHA-256 of its canonical form (other keys)."""
    body = {k: v for k, v in payload.items() if k != CHECKSUM_KEY}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    body[CHECKSUM_KEY] = hashlib.sha256(canonical.encode()).hexdigest()
    return json.dumps(body, indent=2, sort_keys=True) + "\n"


def write_checked_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Write ``payload`` atomically with its checksum inside (``content_sha256``)."""
    atomic_write_text(Path(path), json_with_checksum(payload))


def read_checked_json(path: Path, rerun: str) -> dict[str, Any]:
    """Read a JSON file written by :func:`write_checked_json` and verify it.

    A file without ``content_sha256`` (written by an older avzsl) is accepted as is. The file is read through
    :func:`~avzsl.pipeline.core.safe_read.read_json_file`: a FIFO or a file far larger than any avzsl writes is
    damaged too, refused before anything is read.

    Raises:
        IntegrityError: not a regular file, too large, unreadable JSON or checksum mismatch; the message names
            ``path`` and ``rerun``.
    """
    path = Path(path)
    try:
        payload = read_json_file(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise IntegrityError(f"{path}: damaged ({exc}); {rerun}") from exc
    except UnreadableFileError as exc:
        raise IntegrityError(f"{exc}; {rerun}") from exc
    if not isinstance(payload, dict):
        raise IntegrityError(f"{path}: damaged (not a JSON object); {rerun}")
    stored = payload.pop(CHECKSUM_KEY, None)
    if stored is not None:
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        if hashlib.sha256(canonical.encode()).hexdigest() != stored:
            raise IntegrityError(f"{path}: checksum mismatch (the file changed after it was written); {rerun}")
    return payload


def read_checked_json_or_none(path: Path, what: str) -> dict[str, Any] | None:
    """:func:`read_checked_json`, or None (with a warning saying it is regenerated) when missing or damaged."""
    path = Path(path)
    if not path.exists():
        _logger.warning("%s: %s is missing: it is made again", path, what)
        return None
    try:
        return read_checked_json(path, "it is made again")
    except IntegrityError as exc:
        _logger.warning("%s", exc)
        return None
