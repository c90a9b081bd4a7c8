"""The paper's numbers and names, and the sweep tables laid out as the paper's tables.

``PAPER_TABLE3`` holds the paper's Table 3 (its full-model row is also Table 2's "Ours"); :func:`ablation_rows` lays
out an ablation sweep as Table 3 with those numbers beside ours, :func:`group_rows` any other sweep group.
"""

from __future__ import annotations

import math
from typing import Any

from avzsl.pipeline.sweep.stats import METRIC_KEYS, format_cell

# Paper Table 3 (S, U, H, ZSL x100) per benchmark and loss variant; the full model's row is also Table 2's "Ours".
PAPER_TABLE3: dict[str, dict[str, tuple[float, float, float, float]]] = {
    "activitynet": {
        "cls": (23.81, 5.06, 8.35, 5.93),
        "cls+kd": (23.65, 7.79, 11.72, 8.47),
        "cls+kd+mask": (25.13, 9.46, 13.75, 9.62),
    },
    "ucf": {
        "cls": (56.09, 15.54, 24.34, 15.87),
        "cls+kd": (66.94, 22.49, 33.67, 23.56),
        "cls+kd+mask": (67.41, 23.88, 35.27, 28.22),
    },
    "vggsound": {
        "cls": (15.46, 3.62, 5.87, 4.17),
        "cls+kd": (15.70, 4.32, 6.76, 4.81),
        "cls+kd+mask": (20.28, 5.94, 9.19, 7.28),
    },
}
BENCHMARK_TITLES = {"ucf": "UCF-GZSL", "activitynet": "ActivityNet-GZSL", "vggsound": "VGGSound-GZSL"}
VARIANT_TITLES = {"cls": "L_CLS", "cls+kd": "+L_KD", "cls+kd+mask": "+L_KD+L_M"}
# The unseen UCF classes shown in the paper's Fig. 3.
PAPER_FIG3_CLASSES = ("BandMarching", "CuttingInKitchen", "PlayingSitar", "ShavingBeard", "WritingOnBoard")


def format_score(value: float) -> str:
    """A score x100 as the report prints it: 2 decimals."""
    return f"{value:.2f}"


def ablation_rows(entries: list[dict[str, Any]], benchmark: str | None) -> tuple[list[str], list[list[str]]]:
    """Table 3 layout: one row per loss variant, ours S U H ZSL (mean ± std) and the paper's numbers beside."""
    paper = PAPER_TABLE3.get(benchmark or "")
    header = ["variant", *(f"{k} ours" for k in METRIC_KEYS), "seeds"]
    if paper:
        header += [f"{k} paper" for k in METRIC_KEYS]
    rows = []
    for e in entries:
        row = [VARIANT_TITLES.get(e["key"], e["key"]), *(format_cell(e[k], e["n"]) for k in METRIC_KEYS), str(e["n"])]
        if paper:
            row += [format_score(v) for v in paper.get(e["key"], (math.nan,) * 4)]
        rows.append(row)
    return header, rows


def group_rows(entries: list[dict[str, Any]], label: str) -> tuple[list[str], list[list[str]]]:
    """A mean ± std table of any sweep group."""
    header = [label, *METRIC_KEYS, "seeds"]
    return header, [[e["key"], *(format_cell(e[k], e["n"]) for k in METRIC_KEYS), str(e["n"])] for e in entries]
