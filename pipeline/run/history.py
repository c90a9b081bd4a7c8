"""What a finished or running ``avzsl-train`` run recorded per epoch (``STAGE/epochs.jsonl``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from avzsl.pipeline.core.safe_read import read_text_file


def read_epochs(path: Path) -> list[dict[str, Any]]:
    """The records of an ``epochs.jsonl`` file (empty when absent)."""
    if not Path(path).exists():
        return []
    return [json.loads(line) for line in read_text_file(Path(path), what="an epochs.jsonl").splitlines()
            if line.strip()]

