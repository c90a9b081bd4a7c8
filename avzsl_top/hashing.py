"""The one digest of a file's bytes, below every layer (used by the encoders, the interop importers and scripts).

It imports nothing of avzsl, so both pure libraries and the application may use it (docs/architecture.md).
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks by :func:`hashlib.file_digest` (checkpoints are hundreds of MB)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
