"""The sweep engine behind ``avzsl-sweep``: plan the runs, train each through the ``avzsl-train`` entry point, then
write ``summary.json`` (and the method table of a ``--methods`` sweep).

The engine trains in-process through a ``train`` callable that the caller passes in (the command line passes the
``avzsl-train`` entry point), so this library module never imports a command-line tool. Every run is an ordinary
``avzsl-train`` run directory under the sweep directory (layout in :mod:`avzsl.pipeline.sweep.plan`): re-running
the same sweep resumes interrupted runs and finds finished ones up to date.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avzsl.pipeline.cache import read_cache_info, weights_are_random
from avzsl.pipeline.core.errors import InvalidValueError
from avzsl.pipeline.core.lock import DirectoryLock
from avzsl.pipeline.run.layout import TRAIN_LOG, run_is_finished
from avzsl.pipeline.sweep.methods import (
    TABLE_MD,
    MethodSpec,
    method_table,
    parse_methods,
    skip_reason,
    write_method_table,
)
from avzsl.pipeline.sweep.plan import (
    SUMMARY_NAME,
    SweepRun,
    check_extra_args,
    format_tables,
    plan_sweep,
    run_record,
    write_summary,
)

_logger = logging.getLogger(__name__)

TrainMain = Callable[[list[str]], int]
"""Trains one run from ``avzsl-train`` arguments and returns its exit code (0 = trained or up to date). It may
write to stdout (the engine captures that) and must leave logging as it found it."""


@dataclass(frozen=True)
class SweepRequest:
    """What to sweep (the ``avzsl-sweep`` options).

    Attributes:
        cache: feature cache directory.
        splits: split folder, or None with ``benchmark``.
        benchmark: built-in benchmark name when ``splits`` is None.
        out: the sweep directory (one run directory per run).
        ablation: train the three loss variants of Table 3.
        rhos: mask proportions to train (Fig. 2).
        methods: ``all`` or ``NAME[:PRESET],...`` (Table 2), or None.
        seeds: one run per seed of every variant, proportion or method.
        extra: avzsl-train options added to every run (after the sweep's own).
    """

    cache: Path
    splits: Path | None
    benchmark: str | None
    out: Path
    ablation: bool = False
    rhos: Sequence[float] = ()
    methods: str | None = None
    seeds: Sequence[int] = (42,)
    extra: Sequence[str] = ()

    def train_argv(self, run: SweepRun) -> list[str]:
        """The avzsl-train arguments of one planned run."""
        where = ["--splits", str(self.splits)] if self.splits else ["--benchmark", str(self.benchmark)]
        return ["--cache", str(self.cache), *where, "--out", str(self.out / run.name), "--seed", str(run.seed),
                *run.train_args, *self.extra]


@dataclass(frozen=True)
class SweepPlan:
    """The runs of a sweep and the requested methods it will not run.

    Attributes:
        runs: the planned runs, in execution order.
        specs: every requested method of a ``--methods`` sweep (run or skipped), else None.
        skipped_methods: method label -> the reason the cache cannot feed it.
    """

    runs: list[SweepRun]
    specs: list[MethodSpec] | None
    skipped_methods: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepOutcome:
    """What a finished sweep command did: one record per run (:func:`~avzsl.pipeline.sweep.plan.run_record`)."""

    request: SweepRequest
    plan: SweepPlan
    records: list[dict[str, Any]]
    summary: dict[str, Any]

    @property
    def failed(self) -> list[str]:
        """Directory names of the runs that failed."""
        return [r["dir"] for r in self.records if r["status"] == "failed"]


def plan_request(request: SweepRequest) -> SweepPlan:
    """Check the request and plan its runs; methods the cache cannot feed are left out with a logged reason.

    Raises:
        ValueError: an option the sweep sets itself among ``extra``, an unknown method, a missing cache folder,
            or a plan that repeats itself.
    """
    check_extra_args(request.extra, request.ablation, request.rhos, methods=request.methods is not None)
    specs = None
    skipped: dict[str, str] = {}
    if request.methods is not None:
        if not request.cache.is_dir():
            raise InvalidValueError(f"{request.cache}: --cache folder not found")
        specs = parse_methods(request.methods)
        for spec in specs:
            reason = skip_reason(spec, request.cache)
            if reason is not None:
                skipped[spec.label] = reason
                _logger.warning("%s: skipped: %s", spec.label, reason)
    runnable = None if specs is None else [s for s in specs if s.label not in skipped]
    return SweepPlan(plan_sweep(request.ablation, request.rhos, request.seeds, runnable), specs, skipped)


def dry_run_text(request: SweepRequest, plan: SweepPlan) -> str:
    """One line per planned run (its status and avzsl-train command) and one per skipped method."""
    lines = []
    for run in plan.runs:
        state = "finished" if run_is_finished(request.out / run.name) else "to run"
        lines.append(f"{run.name}: {state}: avzsl-train {' '.join(request.train_argv(run))}")
    lines += [f"method {label}: skipped: {reason}" for label, reason in plan.skipped_methods.items()]
    return "".join(f"{line}\n" for line in lines)


def run_sweep(request: SweepRequest, plan: SweepPlan, train: TrainMain) -> SweepOutcome:
    """Train every planned run in order under the sweep directory's lock, then write ``summary.json`` (and
    ``methods.json`` / ``methods.md`` of a methods sweep).

    A run that fails (non-zero exit of ``train``) is logged and recorded as failed; the others go on.
    """
    with DirectoryLock(request.out, "sweep directory", name=".avzsl-sweep.lock"):
        records = []
        for i, run in enumerate(plan.runs, 1):
            run_dir = request.out / run.name
            finished_before = run_is_finished(run_dir)
            _logger.info("[%d/%d] %s%s", i, len(plan.runs), run.name, " (finished earlier)" if finished_before else "")
            captured = io.StringIO()
            with contextlib.redirect_stdout(captured):
                code = train(request.train_argv(run))
            if code != 0:
                _logger.error("%s failed (exit %d); see %s", run.name, code, run_dir / TRAIN_LOG)
                status = "failed"
            else:
                status = "up to date" if finished_before else "trained"
                _logger.info("%s: %s", run.name, captured.getvalue().strip())
            records.append(run_record(request.out, run, status))
        meta = {
            "cache": str(request.cache),
            "splits": str(request.splits) if request.splits else None,
            "benchmark": request.benchmark,
            "ablation": bool(request.ablation),
            "rhos": list(request.rhos),
            "methods": None if plan.specs is None else [spec.label for spec in plan.specs],
            "skipped_methods": plan.skipped_methods,
            "seeds": list(request.seeds),
            "extra_args": list(request.extra),
            "random_weights": weights_are_random(read_cache_info(request.cache)),
        }
        summary = write_summary(request.out, records, meta)
        if plan.specs is not None:
            write_method_table(request.out, method_table(records, plan.specs, plan.skipped_methods), meta)
    return SweepOutcome(request, plan, records, summary)


def outcome_text(outcome: SweepOutcome) -> str:
    """The tables (the method table of a methods sweep, else one table per group) and a line of counts; a last line
    names the failed runs, if any."""
    out = outcome.request.out
    methods = outcome.plan.specs is not None
    text = (out / TABLE_MD).read_text() if methods else format_tables(outcome.summary)
    records, failed, skipped_methods = outcome.records, outcome.failed, outcome.plan.skipped_methods
    skipped = sum(r["status"] == "up to date" for r in records)
    methods_text = f", {len(skipped_methods)} method(s) skipped" if skipped_methods else ""
    table_text = f", table in {out / TABLE_MD}" if methods else ""
    text += (
        f"{len(records)} run(s): {skipped} up to date, {len(records) - skipped - len(failed)} trained, "
        f"{len(failed)} failed{methods_text}; summary in {out / SUMMARY_NAME}{table_text}\n"
    )
    if failed:
        text += f"failed: {', '.join(failed)}\n"
    return text
