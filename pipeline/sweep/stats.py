"""Statistics over seeds shared by the sweep summary, the method table and the report: the metric names, mean ±
sample std, and its table cell.

The standard deviation is the sample standard deviation over seeds (n - 1 in the denominator; 0 for one seed).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

METRIC_KEYS = ("S", "U", "H", "ZSL")
"""The test metrics of a run (``metrics.json`` keys), in table order: seen, unseen, harmonic mean, zero-shot."""


def mean_std(values: Sequence[float]) -> dict[str, float]:
    """Mean and sample standard deviation (n - 1; 0 for a single value), rounded to 4 decimals.

    No values give NaN for both; a NaN or infinite value gives a NaN std (and propagates into the mean).
    """
    values = [float(v) for v in values]
    n = len(values)
    if n == 0:
        return {"mean": float("nan"), "std": float("nan")}
    mean = statistics.mean(values)
    if n == 1:
        std = 0.0
    elif all(math.isfinite(v) for v in values):
        std = statistics.stdev(values)
    else:  # statistics.stdev cannot take NaN or infinity (it computes with exact fractions)
        std = float("nan")
    return {"mean": round(mean, 4), "std": round(std, 4)}


def format_cell(stat: dict[str, float], n: int) -> str:
    """``mean ± std`` with 2 decimals (just the mean for one seed; ``-`` without runs)."""
    if n == 0 or math.isnan(stat["mean"]):
        return "-"
    return f"{stat['mean']:.2f}" if n == 1 else f"{stat['mean']:.2f} ± {stat['std']:.2f}"
