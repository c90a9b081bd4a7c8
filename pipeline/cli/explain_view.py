"""``avzsl-predict --explain``: the ranked classes with what each branch of the model said, and a per-second strip.

The numbers are those of ``--json`` (one computation, :mod:`avzsl.pipeline.predict.explain`); this module only lays
them out as text.
"""

from __future__ import annotations

from typing import Any

LEVELS = " .:-=+*#%@"
"""Glyphs of the per-second strip: p in [0, 0.1) is a blank, [0.9, 1] is ``@``."""

BRANCH_NOTES = {
    "softmax": "saw / heard: the visual and audio branch distributions p_v, p_a (eq. 3-4; each sums to 1 over the "
               "candidates), fused into p (eq. 6)",
    "cosine": "saw / heard: the CLIP image-text and CLAP audio-text cosines, fused into the score",
}


def level(p: float) -> str:
    """The strip glyph of a probability (values outside [0, 1] are clipped)."""
    return LEVELS[min(len(LEVELS) - 1, max(0, int(p * len(LEVELS))))]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def video_lines(path: str, item: Any) -> list[str]:
    """The lines of one predicted video (a :class:`~avzsl.pipeline.predict.ranking.VideoPrediction`)."""
    plural = "" if item.windows == 1 else "s"
    lines = [f"{path} ({item.windows} window{plural})" if item.windows else f"{path} (cached feature)"]
    width = max([5, *(len(r.class_name) for r in item.predictions)])
    lines.append(f"  {'rank':>4}  {'class':<{width}}  {'score':>8}  {'p':>6}  {'seen':<6}  {'saw':>7}  {'heard':>7}")
    for rank, r in enumerate(item.predictions, start=1):
        seen = "seen" if r.seen else "unseen"
        p = "-" if r.probability is None else f"{r.probability:.3f}"
        lines.append(f"  {rank:>4}  {r.class_name:<{width}}  {r.score:>8.4f}  {p:>6}  {seen:<6}  "
                     f"{_number(r.visual):>7}  {_number(r.audio):>7}")
    lines.append(f"  {BRANCH_NOTES.get(item.branches, 'this method has no separate visual and audio branch scores')}")
    if not item.window_support:
        lines.append("  per-second support: none (no per-window features)")
        return lines
    windows = item.window_support
    if not any(w.p for w in windows):  # a scorer without probabilities: each window only names its first class
        lines.append(f"  per-second support ({len(windows)} windows): this scorer gives no probability, only the "
                     "class each window ranks first")
        for rank, r in enumerate(item.predictions, start=1):
            first = sum(w.top == r.class_name for w in windows)
            lines.append(f"    {rank:>2} {r.class_name:<{width}} first in {first} of {len(windows)}")
        return lines
    lines.append(f"  per-second support ({len(windows)} windows, from {windows[0].start:.0f} s to "
                 f"{windows[-1].end:.0f} s; glyph = p of the class in that window alone, ' ' < 0.1 ... '@' >= 0.9)")
    for rank, r in enumerate(item.predictions, start=1):
        strip = "".join(level(w.p.get(r.class_name, 0.0)) for w in windows)
        first = sum(w.top == r.class_name for w in windows)
        lines.append(f"    {rank:>2} {r.class_name:<{width}} |{strip}|  first in {first} of {len(windows)}")
    index = {r.class_name: str(rank) if rank < 10 else "+" for rank, r in enumerate(item.predictions, start=1)}
    tops = "".join(index.get(w.top, "?") for w in windows)
    lines.append(f"    {'':>2} {'first':<{width}} |{tops}|  (rank of each window's first class; ? = not shown)")
    return lines


def explain_text(results: dict[str, Any], header: str | None, random_weights: bool, warning: str = "") -> str:
    """The ``--explain`` view of ``path -> VideoPrediction | VideoFailure``.

    Args:
        results: from :meth:`Predictor.predict` or a zero-shot scorer.
        header: what the ranking score is (``CalibrationPlan.score_is()``); None: taken from the predictions.
        random_weights: print ``warning`` (the meaningless-predictions warning) first.
    """
    lines: list[str] = []
    if random_weights:
        lines.append(f"WARNING: {warning}")
    header = header or next((item.score_is for item in results.values() if getattr(item, "score_is", "")), None)
    if header:
        lines.append(f"score = {header}")
    for path, item in results.items():
        if not hasattr(item, "predictions"):  # a VideoFailure
            lines.append(f"{path}: ERROR {item.message()}")
            continue
        lines += video_lines(path, item)
    return "\n".join(lines) + "\n"
