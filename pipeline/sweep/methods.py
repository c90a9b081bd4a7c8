"""The method comparison of the paper's Table 2 as one ``avzsl-sweep --methods`` command: plan, skips and table.

A methods sweep trains every requested registered method (``model/registry.py``) once per seed through the ordinary
``avzsl-train`` code path, one run directory each::

    DIR/method-<name>-seed<S>/            avzsl-train --method <name>
    DIR/method-<name>-<preset>-seed<S>/   avzsl-train --method <name> --preset <preset>   (coordinate_generalize)
    DIR/methods.md, DIR/methods.json      the table: S/U/H/ZSL mean +- std per method, wall time, gamma

A method is named ``NAME`` or ``NAME:PRESET`` (only coordinate_generalize has presets: ``recommended``, the
avzsl-train default, and ``paper``); ``all`` is every registered method, with each preset of
coordinate_generalize as its own row. A method the cache cannot feed is not run; it gets a row
``skipped: <reason>`` (a method that needs per-window sequences, TCAF, on a cache without them; the frozen CLIP/CLAP
zero-shot scorer on a cache whose class table was not embedded with the CLIP/CLAP text towers). On a cache with
sequences, avzsl-train feeds them to such a method like any other run.

Wall time of a run is the sum of the per-epoch ``seconds`` recorded in ``stage1/epochs.jsonl`` (training plus the
per-epoch validation) and ``stage2/epochs.jsonl`` (training): epochs that finished before an interruption keep their
own time, so a resumed run reports the time its epochs took, not the time of the last command.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avzsl.extractors.text.text_towers import text_segments
from avzsl.model.coordinate_generalize import DEFAULT_PRESET, PRESETS
from avzsl.model.registry import DEFAULT_METHOD, get_method, list_methods
from avzsl.pipeline.cache import cache_has_sequences, label_head_problem, read_class_table
from avzsl.pipeline.core.atomic import atomic_write_text
from avzsl.pipeline.core.errors import InvalidValueError
from avzsl.pipeline.core.tables import markdown_table
from avzsl.pipeline.run.history import read_epochs
from avzsl.pipeline.run.layout import STAGES, metrics_gamma, stage_epochs_path
from avzsl.pipeline.sweep.stats import METRIC_KEYS, format_cell, mean_std

_logger = logging.getLogger(__name__)

TABLE_JSON = "methods.json"
TABLE_MD = "methods.md"
TABLE_FORMAT = "avzsl-methods-table"
TABLE_VERSION = 1


@dataclass(frozen=True)
class MethodSpec:
    """One row of the method table: a registered method, optionally with a named preset.

    Attributes:
        method: registry name (``avzsl-train --method``).
        preset: ``avzsl-train --preset`` value, or None for the avzsl-train default.
    """

    method: str
    preset: str | None = None

    @property
    def label(self) -> str:
        """``NAME`` or ``NAME:PRESET``, the spelling of ``--methods`` and of the table rows."""
        return self.method if self.preset is None else f"{self.method}:{self.preset}"

    @property
    def train_args(self) -> tuple[str, ...]:
        """The avzsl-train options that select this method."""
        return ("--method", self.method) + (("--preset", self.preset) if self.preset else ())


def method_presets(method: str) -> tuple[str, ...]:
    """Named presets of a method other than the avzsl-train default (``("paper",)`` for coordinate_generalize)."""
    if method != "coordinate_generalize":
        return ()
    return tuple(p for p in PRESETS if p != DEFAULT_PRESET)


def parse_methods(text: str) -> list[MethodSpec]:
    """``all`` or ``NAME[:PRESET],...`` -> method specs in the given order (``ValueError`` on unknown names).

    ``all`` lists coordinate_generalize first (default preset, then its other presets), then the other registered
    methods by name.
    """
    registered = list_methods()
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise InvalidValueError("--methods needs 'all' or a comma-separated list of registered methods")
    if items == ["all"]:
        ordered = [DEFAULT_METHOD, *(m for m in registered if m != DEFAULT_METHOD)]
        specs = []
        for name in ordered:
            specs.append(MethodSpec(name))
            specs += [MethodSpec(name, p) for p in method_presets(name)]
        return specs
    if "all" in items:
        raise InvalidValueError("--methods all cannot be combined with method names")
    specs = []
    for item in items:
        name, _, preset = item.partition(":")
        if name not in registered:
            raise InvalidValueError(f"--methods: unknown method {name!r}; registered: {', '.join(registered)}")
        others = method_presets(name)
        if preset and preset not in others and not (others and preset == DEFAULT_PRESET):
            known = ", ".join(others) or "none"
            raise InvalidValueError(
                f"--methods: {name!r} has no preset {preset!r} (presets besides the default: {known})"
            )
        # The default preset named explicitly is the same run as the bare name.
        spec = MethodSpec(name, preset if preset in others else None)
        if spec in specs:
            raise InvalidValueError(f"--methods: {item!r} is listed twice")
        specs.append(spec)
    return specs


def cache_has_text_towers(cache_dir: Path) -> bool:
    """Whether the class table was embedded with the CLIP/CLAP text towers (what the zero-shot scorer needs)."""
    return text_segments(read_class_table(Path(cache_dir)).provenance) is not None


def skip_reason(spec: MethodSpec, cache_dir: Path) -> str | None:
    """Why the cache cannot feed the method (one sentence), or None when it can."""
    entry = get_method(spec.method)
    if entry.needs_sequences and not cache_has_sequences(Path(cache_dir)):
        return "needs per-window sequences; the cache has none (avzsl-synth --windows N, or extract with them)"
    if getattr(entry.cls, "needs_label_bridge", False):
        return label_head_problem(Path(cache_dir))
    if spec.method == "zero_shot" and not cache_has_text_towers(cache_dir):
        return ("needs CLIP/CLAP features with text-tower class embeddings (avzsl-extract --encoder clip_clap); "
                "this cache has other class embeddings")
    return None


# ----------------------------------------------------------------------------------------------------------------
# reading finished runs


def run_seconds(run_dir: Path) -> dict[str, float]:
    """Wall seconds of a run's stages from its ``epochs.jsonl`` files: ``{"stage1", "stage2", "train"}``.

    ``stage1`` is training plus per-epoch validation, ``stage2`` the retraining; ``train`` their sum.
    """
    out = {}
    for stage in STAGES:
        records = read_epochs(stage_epochs_path(run_dir, stage))
        out[f"stage{stage}"] = round(sum(float(r.get("seconds", 0.0)) for r in records), 4)
    out["train"] = round(out["stage1"] + out["stage2"], 4)
    return out


def method_record_fields(run_dir: Path, metrics: dict[str, Any]) -> dict[str, Any]:
    """What the method table needs of one finished run besides S/U/H/ZSL: seconds, gamma and its edge verdict."""
    calibration = metrics.get("calibration") or {}
    return {
        "seconds": run_seconds(run_dir),
        "gamma": metrics_gamma(metrics),
        "gamma_at_edge": bool(calibration.get("at_edge", False)),
        "gamma_range": [calibration["low"], calibration["high"]] if "low" in calibration else None,
        "edge_optimal": calibration.get("edge_optimal"),
    }


# ----------------------------------------------------------------------------------------------------------------
# the table


def _finite_mean_std(values: Sequence[float]) -> dict[str, float]:
    """:func:`mean_std` of the values that are not NaN (a run without a calibration value has gamma NaN)."""
    return mean_std([v for v in values if not math.isnan(v)])


def method_table(records: Sequence[dict[str, Any]], specs: Sequence[MethodSpec],
                 skipped: dict[str, str]) -> list[dict[str, Any]]:
    """One row per method spec (in ``specs`` order) from the sweep's run records.

    Args:
        records: :func:`avzsl.pipeline.sweep.plan.run_record` entries of group ``"method"`` (key = spec label).
        specs: every requested method, run or skipped.
        skipped: label -> reason of the methods not run.

    Returns:
        Rows with ``method``, ``n``, ``seeds``, ``missing_seeds``, S/U/H/ZSL ``{"mean", "std"}`` (x100),
        ``train_seconds`` ``{"mean", "std"}``, ``stage1_seconds``/``stage2_seconds`` means, ``gamma``
        ``{"mean", "std"}``, ``gamma_at_edge`` (runs at an edge), ``status`` (``ok``, ``partial``, ``failed`` or
        ``skipped``) and ``reason`` for skipped ones.
    """
    rows = []
    for spec in specs:
        label = spec.label
        if label in skipped:
            rows.append({"method": label, "status": "skipped", "reason": skipped[label], "n": 0, "seeds": [],
                         "missing_seeds": []})
            continue
        mine = [r for r in records if r.get("group") == "method" and r.get("key") == label]
        done = [r for r in mine if "metrics" in r]
        row: dict[str, Any] = {
            "method": label,
            "n": len(done),
            "seeds": [r["seed"] for r in done],
            "missing_seeds": [r["seed"] for r in mine if "metrics" not in r],
        }
        for key in METRIC_KEYS:
            row[key] = _finite_mean_std([float(r["metrics"][key]) for r in done])
        row["train_seconds"] = _finite_mean_std([float(r["seconds"]["train"]) for r in done])
        for stage in ("stage1", "stage2"):
            row[f"{stage}_seconds"] = _finite_mean_std([float(r["seconds"][stage]) for r in done])["mean"]
        row["gamma"] = _finite_mean_std([float(r["gamma"]) for r in done])
        row["gamma_at_edge"] = sum(bool(r.get("gamma_at_edge")) for r in done)
        row["edge_optimal"] = [r.get("edge_optimal") for r in done if r.get("gamma_at_edge")]
        row["status"] = "ok" if done and not row["missing_seeds"] else ("partial" if done else "failed")
        rows.append(row)
    return rows


TABLE_HEADER = ["method", *METRIC_KEYS, "seeds", "train s (mean)", "gamma", "gamma at edge", "note"]


def method_table_cells(rows: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Text cells of the table (columns :data:`TABLE_HEADER`): S U H ZSL as mean ± std, the number of seeds, mean
    train seconds, gamma as mean ± std, ``k/n`` seeds with gamma at an edge, and a note (skip reason, failures)."""
    out = []
    for row in rows:
        if row["status"] == "skipped":
            out.append([row["method"], *("-" for _ in METRIC_KEYS), "0", "-", "-", "-", f"skipped: {row['reason']}"])
            continue
        n = row["n"]
        missing = ", ".join(map(str, row["missing_seeds"]))
        note = f"failed or unfinished seed(s): {missing}" if missing else ""
        if n == 0:
            out.append([row["method"], *("-" for _ in METRIC_KEYS), "0", "-", "-", "-", note or "failed"])
            continue
        gamma = row["gamma"]
        gamma_text = f"{gamma['mean']:.4g}" if n == 1 else f"{gamma['mean']:.4g} ± {gamma['std']:.2g}"
        out.append([row["method"], *(format_cell(row[k], n) for k in METRIC_KEYS), str(n),
                    f"{row['train_seconds']['mean']:.2f}", gamma_text, f"{row['gamma_at_edge']}/{n}", note])
    return out


def format_method_markdown(rows: Sequence[dict[str, Any]], title: str) -> str:
    """The table as a Markdown document with a title (columns :data:`TABLE_HEADER`)."""
    lines = [f"# {title}", "", *markdown_table(TABLE_HEADER, method_table_cells(rows))]
    return "\n".join(lines) + "\n"


def write_method_table(sweep_dir: Path, rows: Sequence[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """Write ``DIR/methods.json`` and ``DIR/methods.md``; returns the JSON payload."""
    seeds = ", ".join(map(str, meta.get("seeds", [])))
    where = meta.get("benchmark") or meta.get("splits") or "?"
    title = f"Methods on {where}: test S/U/H/ZSL x100, mean ± std over seeds {seeds}"
    payload = {
        "format": TABLE_FORMAT,
        "format_version": TABLE_VERSION,
        **meta,
        "std": "sample standard deviation over seeds (n - 1); 0 for one seed",
        "columns": {
            "S/U/H/ZSL": "test accuracy x100 (calibrated stacking with the stage-1 gamma), mean and std over seeds",
            "train_seconds": "wall seconds of stage 1 (training + per-epoch validation) and stage 2, mean over seeds",
            "gamma": "calibration gamma chosen on stage-1 validation, mean and std over seeds",
            "gamma_at_edge": "number of seeds whose gamma lies at an edge of its search range",
        },
        "rows": list(rows),
    }
    atomic_write_text(Path(sweep_dir) / TABLE_JSON, json.dumps(payload, indent=2, sort_keys=True) + "\n")
    atomic_write_text(Path(sweep_dir) / TABLE_MD, format_method_markdown(rows, title))
    return payload


def read_method_table(sweep_dir: Path) -> dict[str, Any] | None:
    """``DIR/methods.json`` of a methods sweep, or None when the sweep has none."""
    path = Path(sweep_dir) / TABLE_JSON
    if not path.is_file():
        return None
    payload = json.loads(path.read_text())
    if payload.get("format") != TABLE_FORMAT:
        raise InvalidValueError(f"{path}: not an avzsl-sweep methods table")
    return payload
