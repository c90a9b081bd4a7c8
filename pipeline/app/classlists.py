"""Ready lists of class names for the page, and the phrases their names are embedded with.

The demo's classes (its 7 test-unseen classes, which ``avzsl-demo`` predicts, and all 19), and the class names of
UCF101, ActivityNet and VGGSound (``avzsl.data_manifests``). Benchmark names such as "Applyingsunscreen" are embedded
with the benchmark's released phrase ("applying sunscreen"), as ``avzsl-predict --class-phrases`` does; a run's own
phrase for a class it was trained on comes first.
"""

from __future__ import annotations

import functools
import re

from avzsl.data_manifests import BENCHMARKS, all_classes, class_phrases
from avzsl.pipeline.synth.real_media import TEST_UNSEEN, real_classes

MAX_CLASSES = 1000
MAX_NAME_CHARS = 200
_BENCHMARK_TITLES = {"ucf": "UCF101", "activitynet": "ActivityNet", "vggsound": "VGGSound"}


def ready_lists() -> dict[str, list[str]]:
    """Title -> class names, in the order shown on the page."""
    everything = list(real_classes().all)
    lists = {"demo: test-unseen classes": list(TEST_UNSEEN), f"demo: all {len(everything)} classes": everything}
    for key in BENCHMARKS:
        names = all_classes(key)
        lists[f"{_BENCHMARK_TITLES.get(key, key)} ({len(names)} classes)"] = names
    return lists


@functools.cache
def _benchmark_phrases() -> dict[str, str]:
    """Lower-cased benchmark class name -> released phrase, over all benchmarks."""
    phrases: dict[str, str] = {}
    for key in BENCHMARKS:
        phrases.update({name.lower(): phrase for name, phrase in class_phrases(key).items()})
    return phrases


def phrases_for(names: list[str]) -> dict[str, str]:
    """The released benchmark phrase of each name that is a benchmark class name (others are left out)."""
    known = _benchmark_phrases()
    return {n: known[n.lower()] for n in names if n.lower() in known}


def parse_class_names(text: str) -> list[str]:
    """Class names typed on the page: one per line, or comma-separated on a single line (so that names with a comma,
    such as VGGSound's "playing violin, fiddle", survive a list); blanks dropped, duplicates (any case) once.

    Raises:
        ValueError: no name, more than :data:`MAX_CLASSES` names or a name over :data:`MAX_NAME_CHARS` characters.
    """
    names: dict[str, str] = {}
    lines = [line for line in (text or "").splitlines() if line.strip()]
    parts = lines if len(lines) > 1 else re.split(r",", lines[0] if lines else "")
    for part in parts:
        name = " ".join(part.split())
        if name:
            names.setdefault(name.lower(), name)
    if not names:
        raise ValueError("type at least one class name (comma-separated or one per line)")
    if len(names) > MAX_CLASSES:
        raise ValueError(f"{len(names)} class names: at most {MAX_CLASSES} are taken")
    long = [n for n in names.values() if len(n) > MAX_NAME_CHARS]
    if long:
        raise ValueError(f"class name over {MAX_NAME_CHARS} characters: {long[0][:40]}...")
    return list(names.values())
