"""Figures and a Markdown/HTML report of a trained run (and optionally of an ablation / mask-proportion sweep).

What :func:`build_report` writes into the output folder (default ``RUN/report``):

``tsne.png``
    Paper Fig. 3: t-SNE of the original audio, learned audio (c_a), original visual and learned visual (c_v)
    features of test videos of up to N unseen classes (fixed ``random_state``), plus silhouette scores.
``per_class_seen.png``, ``per_class_unseen.png``
    Test per-class top-1 accuracy (from ``metrics.json``), sorted, with the mean (S or U) marked.
``stage1_validation.png``
    Stage-1 validation S, U, H, ZSL per epoch and the calibration gamma per epoch, with e* and gamma* marked.
``training_losses.png``
    Mean training losses per epoch (total, cls, kd, mask) of stage 1 and stage 2.
``mask_proportion.png`` (with a sweep)
    Paper Fig. 2: test H (mean ± std over seeds) against the mask proportion rho.
``report.md``, ``report.html``
    The test metrics, the ablation table in the layout of the paper's Table 3 (with the paper's numbers when the
    benchmark is known), the method table of a ``--methods`` sweep (Table 2 layout), every figure, and a warning
    when the cache was extracted with random encoder weights.

Without a run, :func:`build_sweep_report` writes only the tables of a sweep (``report.md``, ``report.html``; no
figures, so no optional packages are needed).

The figures are drawn by :mod:`avzsl.pipeline.report.figures`, the Markdown/HTML by
:mod:`avzsl.pipeline.report.document`, the paper's tables by :mod:`avzsl.pipeline.report.paper`. matplotlib and
scikit-learn are optional (``pip install avzsl[report]``); only the figures module imports them, lazily, with the
non-interactive Agg backend.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avzsl.model.registry import method_options
from avzsl.pipeline.cache import CacheError, read_cache_info, weights_are_random
from avzsl.pipeline.core.checksums import read_checked_json
from avzsl.pipeline.data.splits import SplitError
from avzsl.pipeline.report.document import Document
from avzsl.pipeline.report.figures import (
    ReportError,
    plot_losses,
    plot_mask_proportion,
    plot_per_class,
    plot_tsne,
    plot_validation,
    require_report_packages,
)
from avzsl.pipeline.report.paper import BENCHMARK_TITLES, PAPER_TABLE3, ablation_rows, format_score, group_rows
from avzsl.pipeline.run.checkpoint import load_checkpoint
from avzsl.pipeline.run.config import PAPER_MASK_RATIO, TrainConfig, read_run_config
from avzsl.pipeline.run.history import read_epochs
from avzsl.pipeline.run.layout import (
    METRICS_JSON,
    MODEL_PT,
    RANDOM_WEIGHTS_WARNING,
    read_stage1_result,
    stage_epochs_path,
)
from avzsl.pipeline.sweep.methods import TABLE_HEADER, method_table_cells, read_method_table
from avzsl.pipeline.sweep.plan import read_summary
from avzsl.pipeline.sweep.stats import METRIC_KEYS

_logger = logging.getLogger(__name__)


def _loss_text(cfg: TrainConfig) -> str:
    """", loss VARIANT, mask proportion rho R" for the paper's method (its options), else ""."""
    options = cfg.method_options or {}
    if "variant" not in options and "mask_ratio" not in options:
        return ""
    resolved = method_options(cfg.method, options)
    return f", loss {resolved.variant}, mask proportion rho {resolved.mask_ratio:g}"


@dataclass
class ReportResult:
    """Files written by :func:`build_report` and the warnings it raised."""

    out_dir: Path
    figures: list[Path]
    markdown: Path
    html: Path
    warnings: list[str]


def _random_weights(run_dir: Path, cache: str) -> bool:
    """Whether the run's features came from random encoder weights (the cache's info, else the model file's)."""
    try:
        if weights_are_random(read_cache_info(Path(cache))):
            return True
    except (CacheError, OSError) as exc:  # the cache may have moved; the model file still records it
        _logger.debug("cache info unreadable: %s", exc)
    model_path = run_dir / MODEL_PT
    if model_path.is_file():
        info = load_checkpoint(model_path).get("cache_info")
        if info:
            return weights_are_random(json.loads(info))
    return False


def build_report(
    run_dir: Path,
    out_dir: Path | None = None,
    tsne_classes: int = 5,
    max_points: int = 300,
    sweep_dir: Path | None = None,
    class_names: list[str] | None = None,
    benchmark: str | None = None,
    tsne_iter: int = 1000,
) -> ReportResult:
    """Write the figures, ``report.md`` and ``report.html`` of a finished run (and a sweep) into ``out_dir``.

    Args:
        run_dir: a finished ``avzsl-train`` run directory (``metrics.json`` present).
        out_dir: output folder; default ``run_dir/report``.
        tsne_classes: number of unseen test classes in the t-SNE figure (ignored with ``class_names``).
        max_points: at most this many test videos in the t-SNE figure.
        sweep_dir: an ``avzsl-sweep`` output folder whose tables and Fig. 2 plot are added.
        class_names: exact unseen classes for the t-SNE figure (e.g.
            :data:`~avzsl.pipeline.report.paper.PAPER_FIG3_CLASSES` on UCF).
        benchmark: benchmark for the paper's numbers when the run used a split folder (ucf, activitynet, vggsound).
        tsne_iter: t-SNE iterations (>= 250).
    """
    require_report_packages()
    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    metrics_path = run_dir / METRICS_JSON
    if not metrics_path.is_file():
        raise ReportError(f"{run_dir}: the run has not finished (no metrics.json); run avzsl-train to the end first")
    if max_points < 5 or tsne_classes < 1:
        raise ReportError("--max-points must be >= 5 and --tsne-classes >= 1")
    metrics = read_checked_json(metrics_path, "rerun avzsl-train with the same options to evaluate the run again")
    benchmark = benchmark or cfg.benchmark
    summary = read_summary(sweep_dir) if sweep_dir is not None else None
    if summary is not None and benchmark is None:
        benchmark = summary.get("benchmark")
    out_dir = Path(out_dir) if out_dir is not None else run_dir / "report"
    out_dir.mkdir(parents=True, exist_ok=True)

    doc = Document(f"avzsl report: {run_dir.name}")
    warnings: list[str] = []
    figures: list[Path] = []
    random_run = _random_weights(run_dir, cfg.cache)
    if random_run or (summary is not None and summary.get("random_weights")):
        warnings.append(RANDOM_WEIGHTS_WARNING)
        _logger.warning(RANDOM_WEIGHTS_WARNING)
        doc.warning(RANDOM_WEIGHTS_WARNING)

    # Test metrics.
    doc.heading("Test metrics")
    where = f"benchmark {benchmark}" if cfg.benchmark else f"splits {cfg.splits}"
    doc.para(
        f"Run {run_dir} ({where}, {cfg.split_variant} split, method {cfg.method}{_loss_text(cfg)}, seed "
        f"{cfg.seed}, config hash {metrics.get('config_hash', '?')}). Test on "
        f"{metrics.get('num_test_videos', '?')} videos with the stage-1 epoch e* = {metrics['epoch']} and "
        f"calibration gamma* = {metrics.get('gamma', metrics.get('beta', float('nan'))):.4g}. All numbers x100."
    )
    header = ["", *METRIC_KEYS]
    rows = [["this run", *(format_score(metrics[k]) for k in METRIC_KEYS)]]
    paper = PAPER_TABLE3.get(benchmark or "")
    if paper:
        ours = paper["cls+kd+mask"]
        rows.append([f"paper ({BENCHMARK_TITLES[benchmark]}, Table 2 'Ours')", *map(format_score, ours)])
    doc.table(header, rows)

    # Fig. 3.
    doc.heading("t-SNE of original and learned features (paper Fig. 3)")
    try:
        tsne = plot_tsne(run_dir, out_dir / "tsne.png", tsne_classes, max_points, class_names, tsne_iter)
    except (CacheError, SplitError, OSError) as exc:  # e.g. the cache moved: the other figures are still useful
        message = f"t-SNE figure skipped: {exc}"
        _logger.warning("%s", message)
        warnings.append(message)
        doc.warning(message)
    else:
        figures.append(tsne.path)
        doc.para(
            f"Test videos of {len(tsne.classes)} unseen classes ({', '.join(tsne.classes)}; {tsne.num_points} "
            "videos), embedded with t-SNE (random_state 0, PCA init). Panels from left to right: original audio, "
            "learned audio c_a, original visual, learned visual c_v. Silhouette scores (computed in each feature "
            "space, higher = better separated classes): "
            + ", ".join(f"{k} {v:.3f}" for k, v in tsne.silhouette.items())
            + "."
        )
        doc.image(tsne.path.name, "t-SNE of original and learned features")

    # Per-class accuracy.
    doc.heading("Per-class test accuracy")
    for part, mean_key, color in (("seen", "S", "tab:blue"), ("unseen", "U", "tab:red")):
        per_class = metrics.get(f"per_class_{part}", {})
        if not per_class:
            continue
        path = plot_per_class(
            per_class, metrics[mean_key], f"test {part} classes: top-1 accuracy (GZSL, mean = {mean_key})",
            out_dir / f"per_class_{part}.png", color,
        )
        figures.append(path)
        doc.para(
            f"{len(per_class)} {part} test classes, generalized setting (all classes are candidates); the dashed "
            f"line is their mean, {mean_key} = {format_score(metrics[mean_key])}."
        )
        doc.image(path.name, f"per-class accuracy, {part} classes")

    # Stage-1 curves.
    stage1 = read_epochs(stage_epochs_path(run_dir, 1))
    stage2 = read_epochs(stage_epochs_path(run_dir, 2))
    best = read_stage1_result(run_dir)
    doc.heading("Stage 1: validation curves and training losses")
    if stage1:
        path = plot_validation(stage1, best, out_dir / "stage1_validation.png")
        figures.append(path)
        if best is not None:
            doc.para(
                f"Validation S, U, H, ZSL per stage-1 epoch (calibration gamma searched each epoch). The best "
                f"validation H is at epoch e* = {best['epoch']} (H {best['H'] * 100:.2f}, gamma* "
                f"{best['gamma']:.4g}); stage 2 retrains for e* epochs and the test uses gamma*."
            )
        doc.image(path.name, "stage-1 validation curves")
        path = plot_losses(stage1, stage2, out_dir / "training_losses.png")
        figures.append(path)
        doc.para("Mean training losses per epoch (total = L_CLS + lambda_1 L_KD + lambda_2 L_M; zero when off).")
        doc.image(path.name, "training losses")
    else:
        doc.para("No stage-1 epochs recorded.")

    # Sweep.
    if summary is not None:
        add_sweep_sections(doc, Path(sweep_dir), summary, benchmark, out_dir, figures)

    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text(doc.markdown(), encoding="utf-8")
    html_path.write_text(doc.html(), encoding="utf-8")
    return ReportResult(out_dir, figures, md_path, html_path, warnings)


def add_sweep_sections(doc: Document, sweep_dir: Path, summary: dict[str, Any], benchmark: str | None,
                       out_dir: Path, figures: list[Path]) -> None:
    """Append the sweep's tables to ``doc``: methods (Table 2 layout), ablation (Table 3), rho with its Fig. 2 plot
    (when matplotlib is installed) and the default configuration; new figures are appended to ``figures``."""
    paper = PAPER_TABLE3.get(benchmark or "")
    groups = summary.get("groups", {})
    seeds = ", ".join(map(str, summary.get("seeds", [])))
    doc.heading("Ablation and sweeps")
    doc.para(
        f"From {sweep_dir} (avzsl-sweep): test metrics x100 as mean ± std (sample std, n - 1) over seeds "
        f"{seeds}; extra avzsl-train options: {' '.join(summary.get('extra_args', [])) or 'none'}."
    )
    table = read_method_table(sweep_dir)
    if table is not None:
        doc.para(
            f"Methods in the layout of the paper's Table 2 ({BENCHMARK_TITLES.get(benchmark or '', 'this data')}): "
            "one avzsl-train run per method and seed with the same protocol, calibration and metrics; train s = "
            "wall seconds of stage 1 (with per-epoch validation) and stage 2, mean over seeds; gamma = the "
            "calibration chosen on stage-1 validation; gamma at edge = seeds whose gamma lies at an edge of its "
            "search range."
        )
        doc.table(list(TABLE_HEADER), method_table_cells(table.get("rows", [])))
    if "ablation" in groups:
        title = BENCHMARK_TITLES.get(benchmark or "", "this data")
        doc.para(
            f"Loss ablation in the layout of the paper's Table 3 ({title})"
            + ("; the paper's numbers are beside ours." if paper else "; benchmark unknown: no paper numbers.")
        )
        doc.table(*ablation_rows(groups["ablation"], benchmark))
    if "rho" in groups:
        doc.para("Mask proportion rho (full model, paper Fig. 2).")
        doc.table(*group_rows(groups["rho"], "rho"))
        paper_rho = PAPER_MASK_RATIO.get(benchmark or "")
        try:
            require_report_packages()
        except ReportError as exc:  # the sweep-only report needs no optional package; the plot does
            doc.warning(f"Fig. 2 plot skipped: {exc}")
        else:
            path = plot_mask_proportion(
                groups["rho"], paper_rho, f"H vs mask proportion ({BENCHMARK_TITLES.get(benchmark or '', 'ours')})",
                out_dir / "mask_proportion.png",
            )
            figures.append(path)
            doc.image(path.name, "H against the mask proportion rho")
        doc.para(
            "The paper gives Fig. 2 only as a plot (best rho 0.1 on ActivityNet and UCF, 0.2 on VGGSound); "
            "its chosen rho is marked when the benchmark is known."
        )
    if "default" in groups:
        doc.para("Default configuration over seeds.")
        doc.table(*group_rows(groups["default"], "config"))
    failed = [r["dir"] for r in summary.get("runs", []) if "metrics" not in r]
    if failed:
        doc.warning(f"runs without results (failed or unfinished): {', '.join(failed)}")


def build_sweep_report(sweep_dir: Path, out_dir: Path | None = None, benchmark: str | None = None) -> ReportResult:
    """``report.md`` and ``report.html`` with the tables of an ``avzsl-sweep`` folder only (no run, no figures).

    Args:
        sweep_dir: the sweep's ``--out`` folder (``summary.json``; ``methods.json`` for a ``--methods`` sweep).
        out_dir: output folder; default ``sweep_dir/report``.
        benchmark: benchmark for the paper's numbers when the sweep used a split folder.
    """
    sweep_dir = Path(sweep_dir)
    summary = read_summary(sweep_dir)
    benchmark = benchmark or summary.get("benchmark")
    out_dir = Path(out_dir) if out_dir is not None else sweep_dir / "report"
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = Document(f"avzsl sweep report: {sweep_dir.name}")
    warnings: list[str] = []
    if summary.get("random_weights"):
        warnings.append(RANDOM_WEIGHTS_WARNING)
        doc.warning(RANDOM_WEIGHTS_WARNING)
    figures: list[Path] = []
    add_sweep_sections(doc, sweep_dir, summary, benchmark, out_dir, figures)
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    md_path.write_text(doc.markdown(), encoding="utf-8")
    html_path.write_text(doc.html(), encoding="utf-8")
    return ReportResult(out_dir, figures, md_path, html_path, warnings)
