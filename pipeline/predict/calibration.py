"""Which calibration shift a prediction applies to seen candidates, and what its ranking score is.

A run's gamma is chosen on stage-1 validation (the benchmark's candidate lists, on the run's calibration scale:
log p for the paper's method) and the protocol applies it to the test candidates: the run's stage-2 training
classes plus the test-unseen classes (the **benchmark list**). ``avzsl-evaluate`` measures the run that way.
``avzsl-predict`` ranks new media, where that gamma was measured to hurt (``bench/predict_heldout.py``,
``docs/predict.md``): on clips made from pictures and recordings the demo run never saw, subtracting its gamma 7.57
lowered top-1 below the uncalibrated ranking for every candidate list tried, by 22 points (± 11) on the benchmark
list itself, and no smaller shift (0.5 to 5) or count-ratio rescaling did better than no shift; only the run's
own test clips (the very media it trained on) gained from it. Its validation clips share their media with the
training clips, so gamma measures how much the run over-trusts media it has memorised, not new media.

``--seen-calibration``:

- ``auto`` (default): no shift, for any candidate list (an info line says so, and whether the list is the
  benchmark's).
- ``full``: the run's gamma for any list (the former default), with a warning when the list is not the benchmark's.
- ``off``: no shift.

The ranking score is the run's calibration-scale score minus the shift: ``log p - shift`` (the paper's method
calibrated on log p), ``p - shift`` (runs calibrated on p), or the method's own score minus the shift (methods whose
scores are not probabilities: DeViSE, ALE, ... cosines or compatibilities).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avzsl.data_manifests import benchmark_splits
from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.data.splits import load_splits

_logger = logging.getLogger(__name__)

CALIBRATIONS = ("auto", "full", "off")
SPACES = ("log p", "p", "score")
"""The scale of a run's ranking score: log-probabilities, probabilities, or a method score that is neither."""


@dataclass(frozen=True)
class CalibrationPlan:
    """The shift applied to seen candidates and why.

    Attributes:
        mode: the requested mode (one of :data:`CALIBRATIONS`).
        gamma: the run's gamma*.
        shift: what is subtracted from the score of every seen candidate (0.0: nothing).
        space: the scale of the score (one of :data:`SPACES`).
        benchmark_list: whether the candidates are the run's benchmark list (None: the run does not say).
        reason: one sentence for the output header.
        note / note_level: what :meth:`log` says (empty: nothing) and at which logging level.
    """

    mode: str
    gamma: float
    shift: float
    space: str
    benchmark_list: bool | None
    reason: str
    note: str = ""
    note_level: int = logging.INFO

    def log(self) -> None:
        """Log the plan's note once per prediction (a warning for ``full`` off the benchmark list)."""
        if self.note:
            _logger.log(self.note_level, "%s", self.note)

    @property
    def applied(self) -> bool:
        """Whether a non-zero shift is subtracted."""
        return self.shift != 0.0

    def score_is(self) -> str:
        """What the ranking score is, in words (the ``score_is`` of every prediction)."""
        base = {"log p": "log p", "p": "p", "score": "the method's score (not a probability)"}[self.space]
        if not self.applied:
            return f"{base} (no calibration shift: {self.reason})"
        return f"{base} - shift, shift = {self.shift:.4g} for seen candidates and 0 for the others ({self.reason})"


def benchmark_classes(state: Mapping[str, Any], config: Any) -> list[str] | None:
    """The run's test candidate list: ``test_classes`` of ``model.pt``, else read from the run's split files.

    Returns None (with a debug line) when neither is available (a run whose split folder is gone).
    """
    recorded = state.get("test_classes")
    if recorded:
        return [str(c) for c in recorded]
    try:
        if getattr(config, "splits", None):
            splits = load_splits(Path(config.splits))
        else:
            splits = benchmark_splits(config.benchmark, getattr(config, "split_variant", "main"))
        seen = list(splits["stage_2_train"].classes)
        folded = {c.lower() for c in seen}
        return seen + [c for c in splits["stage_2_test_unseen"].classes if c.lower() not in folded]
    except (UserError, OSError, KeyError, ValueError, TypeError) as exc:
        _logger.debug("the run's benchmark candidate list is not available: %s", exc)
        return None


def plan_calibration(
    mode: str, names: Sequence[str], seen: Sequence[bool], gamma: float, space: str,
    benchmark: Sequence[str] | None,
) -> CalibrationPlan:
    """Decide the shift for one candidate list (see the module docstring).

    Args:
        mode: ``auto``, ``full`` or ``off``.
        names / seen: the candidates and their seen flags.
        gamma: the run's gamma*.
        space: the scale of the run's scores (:data:`SPACES`).
        benchmark: the run's benchmark list (:func:`benchmark_classes`), or None.

    Raises:
        ValueError: an unknown mode or space.
    """
    if mode not in CALIBRATIONS:
        raise ValueError(f"calibration must be one of {CALIBRATIONS}, not {mode!r}")
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, not {space!r}")
    is_benchmark = None if benchmark is None else {n.lower() for n in names} == {b.lower() for b in benchmark}
    listed = "the run's benchmark candidate list" if is_benchmark else (
        "a candidate list other than the run's benchmark list" if is_benchmark is False
        else "a candidate list the run cannot compare with its benchmark list (split files not found)")
    if not any(seen):
        return CalibrationPlan(mode, gamma, 0.0, space, is_benchmark, "no candidate is a seen class of the run")
    if mode == "off":
        return CalibrationPlan(mode, gamma, 0.0, space, is_benchmark, "--seen-calibration off")
    if mode == "full":
        note, level = "", logging.INFO
        if not is_benchmark:
            note, level = (f"--seen-calibration full: the run's gamma {gamma:.4g} was chosen for its benchmark "
                           f"candidate list and is applied to {listed}, where it is not a tuned value (measured on "
                           "new media it can put any unseen candidate above every seen one)"), logging.WARNING
        return CalibrationPlan(mode, gamma, gamma, space, is_benchmark, f"the run's gamma, {listed}", note, level)
    reason = (f"--seen-calibration auto: the run's gamma {gamma:.4g} is not applied to new media ({listed}; "
              "docs/predict.md)")
    note = (f"calibrated stacking not applied: the run's gamma {gamma:.4g} was chosen on validation clips, and on new "
            "media it lowered top-1 (docs/predict.md); --seen-calibration full applies it")
    return CalibrationPlan(mode, gamma, 0.0, space, is_benchmark, reason, note)
