"""What a finished or running ``avzsl-train`` run recorded per epoch (``STAGE/epochs.jsonl``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_epochs(path: Path) -> list[dict[str, Any]]:
    """The records of an ``epochs.jsonl`` file (empty when absent)."""
    if not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]

