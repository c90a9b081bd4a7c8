"""The batch table of a request: one row per video and ranked class, as CSV (the JSON is the document itself)."""

from __future__ import annotations

import csv
import io
from typing import Any

CSV_COLUMNS = ("video", "rank", "class", "score", "p", "seen", "saw", "heard", "windows", "error")


def results_csv(document: dict[str, Any]) -> str:
    """CSV of an ``avzsl-predict --json`` document: a row per ranked class of each video (``saw``/``heard``: the
    visual and audio branch scores), one row with the ``error`` for a video that could not be used."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for video, entry in document.items():
        if "error" in entry:
            writer.writerow([video, "", "", "", "", "", "", "", "", entry["error"]])
            continue
        for rank, r in enumerate(entry["predictions"], start=1):
            writer.writerow([video, rank, r["class"], _num(r["score"]), _num(r["p"]), "seen" if r["seen"] else "unseen",
                             _num(r.get("visual")), _num(r.get("audio")), entry["windows"], ""])
    return out.getvalue()


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"
