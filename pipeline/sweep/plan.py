"""Ablation (Table 3), mask-proportion (Fig. 2) and multi-seed sweeps over ``avzsl-train`` runs.

A sweep is a plan of ordinary run directories under one sweep directory, each trained in-process through the
``avzsl-train`` entry point by :func:`avzsl.pipeline.sweep.runner.run_sweep` (so every run is resumable, and a
finished run is skipped because ``avzsl-train`` finds it up to date)::

    DIR/ablation-<variant>-seed<S>/   --loss <variant>               (variant: cls, cls+kd, cls+kd+mask)
    DIR/rho-<rho>-seed<S>/            --loss cls+kd+mask --mask-ratio <rho>
    DIR/default-seed<S>/              the default configuration (only when neither ablation nor rho is asked)
    DIR/method-<name>-seed<S>/        --method <name> [--preset P] (--methods; see avzsl.pipeline.sweep.methods)
    DIR/summary.json                  per-run test metrics and mean +- std over seeds per group
    DIR/sweep.log                     the sweep's log (every run also has its own RUN/train.log)

The standard deviation is the sample standard deviation over seeds (n - 1 in the denominator; 0 for one seed).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avzsl.pipeline.core.atomic import atomic_write_text
from avzsl.pipeline.core.checksums import IntegrityError, read_checked_json
from avzsl.pipeline.core.errors import InvalidValueError
from avzsl.pipeline.core.tables import fixed_width_table
from avzsl.pipeline.run.layout import METRICS_JSON
from avzsl.pipeline.sweep.methods import MethodSpec, method_record_fields
from avzsl.pipeline.sweep.stats import METRIC_KEYS, format_cell, mean_std

_logger = logging.getLogger(__name__)

ABLATION_VARIANTS = ("cls", "cls+kd", "cls+kd+mask")
SUMMARY_NAME = "summary.json"
SUMMARY_FORMAT = "avzsl-sweep-summary"
SUMMARY_VERSION = 1

# avzsl-train options the sweep sets itself; giving them after ``--`` would contradict the plan.
_RESERVED_ALWAYS = ("--cache", "--splits", "--benchmark", "--out", "--seed")


def format_rho(rho: float) -> str:
    """The directory spelling of a mask proportion: ``0``, ``0.1``, ``0.25`` (shortest exact decimal)."""
    text = repr(float(rho))
    return text[:-2] if text.endswith(".0") else text


@dataclass(frozen=True)
class SweepRun:
    """One planned training run.

    Attributes:
        group: ``"ablation"``, ``"rho"``, ``"method"`` or ``"default"``.
        key: the loss variant (ablation), the mask proportion as text (rho), the method label ``NAME[:PRESET]``
            (method) or ``"default"``.
        seed: the run's random seed.
        train_args: the avzsl-train options that define the variant (before the user's extra options).
    """

    group: str
    key: str
    seed: int
    train_args: tuple[str, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        """Run directory name inside the sweep directory."""
        if self.group == "default":
            return f"default-seed{self.seed}"
        if self.group == "method":  # "coordinate_generalize:paper" -> method-coordinate_generalize-paper-seed0
            return f"method-{self.key.replace(':', '-')}-seed{self.seed}"
        return f"{self.group}-{self.key}-seed{self.seed}"


def plan_sweep(ablation: bool, rhos: Sequence[float], seeds: Sequence[int],
               methods: Sequence[MethodSpec] | None = None) -> list[SweepRun]:
    """The runs of a sweep, in execution order (ablation first, then rho, each over all seeds).

    ``methods`` (:class:`~avzsl.pipeline.sweep.methods.MethodSpec`, the ones the cache can feed) plans one run per
    method and seed instead, method by method (an empty list plans nothing: every requested method was skipped);
    it cannot be combined with ``ablation`` or ``rhos``. With none of the three the plan is the default
    configuration once per seed.
    """
    if not seeds:
        raise InvalidValueError("give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise InvalidValueError(f"seeds repeat: {list(seeds)}")
    for rho in rhos:
        if not 0.0 <= rho <= 1.0:
            raise InvalidValueError(f"mask proportion rho must be in [0, 1], got {rho!r}")
    if len({format_rho(r) for r in rhos}) != len(rhos):
        raise InvalidValueError(f"mask proportions repeat: {list(rhos)}")
    if methods is not None and (ablation or rhos):
        raise InvalidValueError("--methods cannot be combined with --ablation or --rho: run them as separate sweeps")
    runs: list[SweepRun] = []
    for spec in methods or ():
        runs += [SweepRun("method", spec.label, s, spec.train_args) for s in seeds]
    if ablation:
        for variant in ABLATION_VARIANTS:
            runs += [SweepRun("ablation", variant, s, ("--loss", variant)) for s in seeds]
    for rho in rhos:
        text = format_rho(rho)
        runs += [SweepRun("rho", text, s, ("--loss", "cls+kd+mask", "--mask-ratio", text)) for s in seeds]
    if not runs and methods is None:
        runs = [SweepRun("default", "default", s) for s in seeds]
    return runs


def check_extra_args(extra: Sequence[str], ablation: bool, rhos: Sequence[float], methods: bool = False) -> None:
    """Refuse extra avzsl-train options that the sweep itself sets (``ValueError`` naming the option)."""
    reserved = list(_RESERVED_ALWAYS)
    if methods:
        reserved += ["--method", "--preset"]
    if ablation or rhos:
        reserved.append("--loss")
    if rhos:
        reserved.append("--mask-ratio")
    for arg in extra:
        option = arg.split("=", 1)[0]
        if option in reserved:
            raise InvalidValueError(
                f"{option} cannot be given after '--': the sweep sets it for every run "
                "(use --seeds for seeds, --ablation/--rho for variants, --methods for methods, and the sweep's own "
                "--cache/--splits/--out)"
            )


def run_record(sweep_dir: Path, run: SweepRun, status: str) -> dict[str, Any]:
    """The summary entry of one run: its place in the plan, its status and (when finished) its test metrics.

    ``metrics.json`` is read through its checksum (:func:`avzsl.pipeline.core.checksums.read_checked_json`); a damaged
    file leaves the run without metrics, with the reason in ``error``. Runs of a methods sweep also carry their
    wall seconds per stage and the calibration gamma with its edge verdict.
    """
    record: dict[str, Any] = {"group": run.group, "key": run.key, "seed": run.seed, "dir": run.name, "status": status}
    path = sweep_dir / run.name / METRICS_JSON
    if status in ("trained", "up to date") and path.is_file():
        try:
            metrics = read_checked_json(path, "rerun the same avzsl-sweep command to evaluate the run again")
        except IntegrityError as exc:
            _logger.error("%s", exc)
            record["error"] = str(exc)
            record["status"] = "failed"
            return record
        record["metrics"] = {k: metrics[k] for k in (*METRIC_KEYS, "epoch", "gamma", "beta") if k in metrics}
        record["config_hash"] = metrics.get("config_hash")
        if run.group == "method":
            record.update(method_record_fields(sweep_dir / run.name, metrics))
    return record


def aggregate(records: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Group finished runs by (group, key) and give mean +- std of S, U, H, ZSL over their seeds."""
    out: dict[str, list[dict[str, Any]]] = {"ablation": [], "rho": [], "method": [], "default": []}
    order: list[tuple[str, str]] = []
    for r in records:
        if (r["group"], r["key"]) not in order:
            order.append((r["group"], r["key"]))
    for group, key in order:
        done = [r for r in records if r["group"] == group and r["key"] == key and "metrics" in r]
        entry: dict[str, Any] = {
            "key": key,
            "n": len(done),
            "seeds": [r["seed"] for r in done],
            "missing_seeds": [r["seed"] for r in records if r["group"] == group and r["key"] == key
                              and "metrics" not in r],
        }
        if group == "rho":
            entry["rho"] = float(key)
        for metric in METRIC_KEYS:
            entry[metric] = mean_std([float(r["metrics"][metric]) for r in done])
        out[group].append(entry)
    return {k: v for k, v in out.items() if v}


def write_summary(sweep_dir: Path, records: Sequence[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    """Write ``DIR/summary.json`` (runs + aggregated groups) and return it."""
    summary = {
        "format": SUMMARY_FORMAT,
        "format_version": SUMMARY_VERSION,
        **meta,
        "std": "sample standard deviation over seeds (n - 1); 0 for one seed",
        "runs": list(records),
        "groups": aggregate(records),
    }
    atomic_write_text(Path(sweep_dir) / SUMMARY_NAME, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def read_summary(sweep_dir: Path) -> dict[str, Any]:
    """Read ``DIR/summary.json`` written by :func:`write_summary` (``ValueError`` when absent or foreign)."""
    # summary.json carries no checksum (it is rewritten from the run directories by every sweep command).
    path = Path(sweep_dir) / SUMMARY_NAME
    if not path.is_file():
        raise InvalidValueError(f"{sweep_dir}: no {SUMMARY_NAME}; run avzsl-sweep with --out {sweep_dir} first")
    summary = json.loads(path.read_text())
    if summary.get("format") != SUMMARY_FORMAT:
        raise InvalidValueError(f"{path}: not an avzsl-sweep summary")
    return summary




def format_tables(summary: dict[str, Any]) -> str:
    """Plain-text tables of every group: one row per variant / rho, S U H ZSL as mean ± std."""
    titles = {
        "ablation": "ablation (Table 3)",
        "rho": "mask proportion rho (Fig. 2)",
        "method": "methods",
        "default": "default configuration",
    }
    blocks = []
    for group, entries in summary.get("groups", {}).items():
        seeds = sorted({s for e in entries for s in e["seeds"]})
        head = f"{titles.get(group, group)}: mean ± std over seeds {', '.join(map(str, seeds)) or '-'}"
        label = {"ablation": "variant", "rho": "rho", "method": "method"}.get(group, "config")
        header = [label, *METRIC_KEYS, "runs"]
        rows = [[e["key"], *(format_cell(e[k], e["n"]) for k in METRIC_KEYS), str(e["n"])] for e in entries]
        widths = [14, *(16 for _ in METRIC_KEYS), 6]
        blocks.append("\n".join([head, *fixed_width_table(header, rows, widths)]))
    return "\n\n".join(blocks) + "\n"
