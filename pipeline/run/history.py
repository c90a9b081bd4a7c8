"""What a finished or running ``avzsl-train`` run recorded: its per-epoch history (``STAGE/epochs.jsonl``) and the
calibration value of its ``metrics.json``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_epochs(path: Path) -> list[dict[str, Any]]:
    """The records of an ``epochs.jsonl`` file (empty when absent)."""
    if not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def metrics_gamma(metrics: dict[str, Any]) -> float:
    """The calibration value of a ``metrics.json`` (``gamma``, or ``beta`` in files of the former format)."""
    value = metrics.get("gamma", metrics.get("beta"))
    return float("nan") if value is None else float(value)
