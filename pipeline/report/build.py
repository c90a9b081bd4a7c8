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

matplotlib and scikit-learn are optional (``pip install avzsl[report]``); they are imported only here, lazily,
with the non-interactive Agg backend.
"""

from __future__ import annotations

import html
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avzsl.pipeline.cache import CacheError
from avzsl.pipeline.core.checksums import read_checked_json
from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.data.splits import SplitError
from avzsl.pipeline.run.layout import (
    METRICS_JSON,
    MODEL_PT,
    RANDOM_WEIGHTS_WARNING,
    stage1_result_path,
    stage_epochs_path,
)

_logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install avzsl[report]"

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
METRIC_KEYS = ("S", "U", "H", "ZSL")
TSNE_SEED = 0


class ReportError(UserError):
    """The report cannot be made (missing optional packages, not a finished run, bad option)."""


def _loss_text(cfg) -> str:  # noqa: ANN001 - TrainConfig
    """", loss VARIANT, mask proportion rho R" for the paper's method (its options), else ""."""
    options = cfg.method_options or {}
    if "variant" not in options and "mask_ratio" not in options:
        return ""
    from avzsl.model.registry import method_options

    resolved = method_options(cfg.method, options)
    return f", loss {resolved.variant}, mask proportion rho {resolved.mask_ratio:g}"


def require_report_packages() -> None:
    """Import matplotlib (Agg backend) and scikit-learn, or fail with the install hint."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import sklearn  # noqa: F401
    except ImportError as exc:
        missing = exc.name or "a package"
        raise ReportError(
            f"avzsl-report needs matplotlib and scikit-learn ({missing} is missing): {INSTALL_HINT}"
        ) from exc


def _figure(width: float, height: float) -> Any:
    """A matplotlib Figure that is not registered with pyplot (no global state, no GUI)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _integer_epochs(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, format="png")
    _logger.info("wrote %s", path)
    return path


# ----------------------------------------------------------------------------------------------------------
# document model rendered to Markdown and HTML


@dataclass
class Document:
    """A report as a list of blocks, rendered to Markdown and to self-contained HTML."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str) -> None:
        self.blocks.append(("h2", text))

    def para(self, text: str) -> None:
        self.blocks.append(("p", text))

    def warning(self, text: str) -> None:
        self.blocks.append(("warn", text))

    def image(self, name: str, alt: str) -> None:
        self.blocks.append(("img", (name, alt)))

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.blocks.append(("table", (header, rows)))

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        for kind, value in self.blocks:
            if kind == "h2":
                out += [f"## {value}", ""]
            elif kind == "p":
                out += [value, ""]
            elif kind == "warn":
                out += [f"> **WARNING**: {value}", ""]
            elif kind == "img":
                out += [f"![{value[1]}]({value[0]})", ""]
            elif kind == "table":
                header, rows = value
                out.append("| " + " | ".join(header) + " |")
                out.append("|" + "|".join("---" for _ in header) + "|")
                out += ["| " + " | ".join(row) + " |" for row in rows]
                out.append("")
        return "\n".join(out).rstrip("\n") + "\n"

    def html(self) -> str:
        esc = html.escape
        body = [f"<h1>{esc(self.title)}</h1>"]
        for kind, value in self.blocks:
            if kind == "h2":
                body.append(f"<h2>{esc(value)}</h2>")
            elif kind == "p":
                body.append(f"<p>{esc(value)}</p>")
            elif kind == "warn":
                body.append(f'<p class="warn"><b>WARNING</b>: {esc(value)}</p>')
            elif kind == "img":
                body.append(f'<p><img src="{esc(value[0])}" alt="{esc(value[1])}"></p>')
            elif kind == "table":
                header, rows = value
                head = "".join(f"<th>{esc(h)}</th>" for h in header)
                lines = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
                body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{lines}</tbody></table>")
        style = (
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:4px 8px;"
            "text-align:right}th{background:#eee}td:first-child{text-align:left}"
            "img{max-width:100%}.warn{background:#fff3cd;border:1px solid #e0b000;padding:8px}"
        )
        return (
            f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(self.title)}</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
        )


# ----------------------------------------------------------------------------------------------------------
# inputs


def read_epochs(path: Path) -> list[dict[str, Any]]:
    """The records of an ``epochs.jsonl`` file (empty when absent)."""
    if not Path(path).is_file():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _fmt(value: float) -> str:
    return f"{value:.2f}"


# ----------------------------------------------------------------------------------------------------------
# figures


def plot_per_class(per_class: dict[str, float], mean: float, title: str, path: Path, color: str) -> Path:
    """Horizontal bars of per-class accuracy (x100), sorted high to low, with the class mean marked."""
    items = sorted(per_class.items(), key=lambda kv: (-kv[1], kv[0]))
    n = max(1, len(items))
    fig = _figure(8.0, max(2.6, 0.9 + (0.2 if n <= 60 else 0.13) * n))
    ax = fig.add_subplot()
    names = [k for k, _ in items][::-1]
    values = [v for _, v in items][::-1]
    ax.barh(range(len(values)), values, color=color)
    ax.set_yticks(range(len(names)), names, fontsize=8 if n <= 60 else 5)
    ax.axvline(mean, color="black", linestyle="--", linewidth=1.2)
    ax.set_xlim(0, 102)
    ax.set_ylim(-0.6, len(values) - 0.4)
    ax.set_xlabel("top-1 accuracy (%)")
    ax.set_title(f"{title}\ndashed line: mean {mean:.2f}", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def plot_validation(epochs: list[dict[str, Any]], best: dict[str, Any] | None, path: Path) -> Path:
    """Stage-1 validation S, U, H, ZSL (x100) per epoch and gamma per epoch, with e* and gamma* marked."""
    fig = _figure(11.0, 4.0)
    ax, axg = fig.subplots(1, 2, width_ratios=(2, 1))
    xs = [r["epoch"] for r in epochs if "val" in r]
    for key, style in zip(METRIC_KEYS, ("-o", "-s", "-D", "-^"), strict=True):
        ax.plot(xs, [r["val"][key] * 100 for r in epochs if "val" in r], style, markersize=3, label=key)
    axg.plot(xs, [r["gamma"] for r in epochs if "val" in r], "-o", markersize=3, color="tab:purple")
    if best is not None:
        label = f"e* = {best['epoch']}, gamma* = {best['gamma']:.4g}"
        for a in (ax, axg):
            a.axvline(best["epoch"], color="gray", linestyle="--", linewidth=1, label=label)
        axg.plot([best["epoch"]], [best["gamma"]], "*", markersize=12, color="black")
        ax.plot([best["epoch"]], [best["H"] * 100], "*", markersize=12, color="black")
    for a in (ax, axg):
        _integer_epochs(a)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.set_title("stage 1: validation S, U, H, ZSL")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    axg.set_xlabel("epoch")
    axg.set_ylabel("calibration gamma")
    axg.set_title("calibration gamma (best on validation)")
    axg.legend(fontsize=8)
    axg.grid(alpha=0.3)
    return _save(fig, path)


def plot_losses(stage1: list[dict[str, Any]], stage2: list[dict[str, Any]], path: Path) -> Path:
    """Mean training losses per epoch: total, cls, kd and mask; stage 1 solid, stage 2 dashed."""
    fig = _figure(11.0, 3.6)
    axes = fig.subplots(1, 4)
    for ax, key in zip(axes, ("loss", "cls", "kd", "mask"), strict=True):
        for records, style, name in ((stage1, "-", "stage 1"), (stage2, "--", "stage 2")):
            if records:
                ax.plot([r["epoch"] for r in records], [r.get(key, float("nan")) for r in records], style, label=name)
        ax.set_title({"loss": "total loss", "cls": "L_CLS", "kd": "L_KD", "mask": "L_M"}[key])
        ax.set_xlabel("epoch")
        _integer_epochs(ax)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("training losses (mean per epoch)")
    return _save(fig, path)


@dataclass
class TsneResult:
    """Outcome of the t-SNE figure: its path, the classes shown, points, and silhouette per panel."""

    path: Path
    classes: list[str]
    num_points: int
    silhouette: dict[str, float]


def pick_unseen_classes(classes: list[str], seen: list[bool], wanted: list[str] | None, count: int) -> list[int]:
    """Column indices of the unseen classes to plot: the named ones (case-insensitive), else the first ``count``."""
    unseen = [i for i, s in enumerate(seen) if not s]
    if wanted:
        by_name = {classes[i].lower(): i for i in unseen}
        unknown = [w for w in wanted if w.lower() not in by_name]
        if unknown:
            names = ", ".join(sorted(classes[i] for i in unseen))
            raise ReportError(f"not unseen test classes of this run: {unknown}; unseen classes are: {names}")
        return [by_name[w.lower()] for w in wanted]
    return sorted(unseen, key=lambda i: classes[i])[: max(0, count)]


def plot_tsne(
    run_dir: Path,
    path: Path,
    num_classes: int = 5,
    max_points: int = 300,
    class_names: list[str] | None = None,
    tsne_iter: int = 1000,
) -> TsneResult:
    """Paper Fig. 3: t-SNE of original and learned audio / visual features of unseen test classes.

    Points are the test videos of the chosen unseen classes, subsampled to at most ``max_points`` (a fixed share
    per class, drawn with a fixed generator); t-SNE uses ``random_state=0`` and PCA initialisation.
    """
    import numpy as np
    import torch
    from sklearn.manifold import TSNE
    from sklearn.metrics import silhouette_score

    from avzsl.pipeline.run.config import read_run_config
    from avzsl.pipeline.run.model_file import load_run_model
    from avzsl.pipeline.train.protocol import load_protocol_data

    cfg = read_run_config(run_dir)
    model, _ = load_run_model(run_dir)
    data, _ = load_protocol_data(cfg)
    test = data.test
    picked = pick_unseen_classes(test.classes, [bool(s) for s in test.seen.tolist()], class_names, num_classes)
    if not picked:
        raise ReportError("the test split has no unseen classes to plot")
    per_class = max(1, max_points // len(picked))
    gen = torch.Generator().manual_seed(TSNE_SEED)
    rows: list[torch.Tensor] = []
    for c in picked:
        idx = torch.nonzero(test.labels == c).flatten()
        if len(idx) > per_class:
            idx = idx[torch.randperm(len(idx), generator=gen)[:per_class]].sort().values
        rows.append(idx)
    index = torch.cat(rows)
    if len(index) < 5:
        raise ReportError(f"only {len(index)} test videos in the chosen unseen classes: too few for t-SNE")
    audio, visual = test.audio[index], test.visual[index]
    with torch.no_grad():
        c_a, c_v = model.learned_features(audio, visual)
    labels = test.labels[index].numpy()
    panels = {
        "original audio": audio.numpy(),
        "learned audio (c_a)": c_a.numpy(),
        "original visual": visual.numpy(),
        "learned visual (c_v)": c_v.numpy(),
    }
    perplexity = float(min(30.0, max(2.0, (len(index) - 1) / 3)))
    fig = _figure(16.0, 4.6)
    axes = fig.subplots(1, 4)
    colors = [f"C{i % 10}" for i in range(len(picked))]
    silhouette: dict[str, float] = {}
    for ax, (title, feats) in zip(axes, panels.items(), strict=True):
        feats = np.asarray(feats, dtype=np.float64)
        tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=TSNE_SEED, max_iter=tsne_iter)
        xy = tsne.fit_transform(feats)
        silhouette[title] = (
            float(silhouette_score(feats, labels)) if len(set(labels.tolist())) > 1 else float("nan")
        )
        for color, c in zip(colors, picked, strict=True):
            sel = labels == c
            ax.scatter(xy[sel, 0], xy[sel, 1], marker="x", s=18, color=color, label=test.classes[c])
        ax.set_title(f"{title}\nsilhouette {silhouette[title]:.2f}", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, names = axes[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=min(len(picked), 6), fontsize=9)
    fig.suptitle(
        f"t-SNE of {len(index)} test videos of unseen classes; silhouette = class separation in each panel's "
        "feature space (before t-SNE)"
    )
    _save(fig, path)
    return TsneResult(path, [test.classes[c] for c in picked], len(index), silhouette)


def plot_mask_proportion(entries: list[dict[str, Any]], paper_rho: float | None, title: str, path: Path) -> Path:
    """Paper Fig. 2: test H (mean ± std over seeds) against the mask proportion rho."""
    entries = sorted((e for e in entries if e["n"] > 0), key=lambda e: e["rho"])
    fig = _figure(6.0, 4.0)
    ax = fig.add_subplot()
    xs = [e["rho"] for e in entries]
    ax.errorbar(
        xs, [e["H"]["mean"] for e in entries], yerr=[e["H"]["std"] for e in entries], fmt="-o", capsize=4,
        label="ours: test H (mean ± std over seeds)",
    )
    if paper_rho is not None:
        ax.axvline(paper_rho, color="gray", linestyle="--", linewidth=1, label=f"paper's choice rho = {paper_rho:g}")
    ax.set_xticks(xs)
    ax.set_xlabel("mask proportion rho")
    ax.set_ylabel("H (%)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


# ----------------------------------------------------------------------------------------------------------
# sweep tables


def ablation_rows(entries: list[dict[str, Any]], benchmark: str | None) -> tuple[list[str], list[list[str]]]:
    """Table 3 layout: one row per loss variant, ours S U H ZSL (mean ± std) and the paper's numbers beside."""
    from avzsl.pipeline.sweep.plan import format_cell

    paper = PAPER_TABLE3.get(benchmark or "")
    header = ["variant", *(f"{k} ours" for k in METRIC_KEYS), "seeds"]
    if paper:
        header += [f"{k} paper" for k in METRIC_KEYS]
    rows = []
    for e in entries:
        row = [VARIANT_TITLES.get(e["key"], e["key"]), *(format_cell(e[k], e["n"]) for k in METRIC_KEYS), str(e["n"])]
        if paper:
            row += [_fmt(v) for v in paper.get(e["key"], (math.nan,) * 4)]
        rows.append(row)
    return header, rows


def group_rows(entries: list[dict[str, Any]], label: str) -> tuple[list[str], list[list[str]]]:
    """A mean ± std table of any sweep group."""
    from avzsl.pipeline.sweep.plan import format_cell

    header = [label, *METRIC_KEYS, "seeds"]
    return header, [[e["key"], *(format_cell(e[k], e["n"]) for k in METRIC_KEYS), str(e["n"])] for e in entries]


# ----------------------------------------------------------------------------------------------------------
# the report


@dataclass
class ReportResult:
    """Files written by :func:`build_report` and the warnings it raised."""

    out_dir: Path
    figures: list[Path]
    markdown: Path
    html: Path
    warnings: list[str]


def _random_weights(run_dir: Path, cache: str) -> bool:
    from avzsl.pipeline.cache import read_cache_info, weights_are_random
    from avzsl.pipeline.run.checkpoint import load_checkpoint

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
        class_names: exact unseen classes for the t-SNE figure (e.g. :data:`PAPER_FIG3_CLASSES` on UCF).
        benchmark: benchmark for the paper's numbers when the run used a split folder (ucf, activitynet, vggsound).
        tsne_iter: t-SNE iterations (>= 250).
    """
    require_report_packages()
    from avzsl.pipeline.run.config import read_run_config
    from avzsl.pipeline.sweep.plan import read_summary

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
    rows = [["this run", *(_fmt(metrics[k]) for k in METRIC_KEYS)]]
    paper = PAPER_TABLE3.get(benchmark or "")
    if paper:
        rows.append([f"paper ({BENCHMARK_TITLES[benchmark]}, Table 2 'Ours')", *map(_fmt, paper["cls+kd+mask"])])
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
            f"line is their mean, {mean_key} = {_fmt(metrics[mean_key])}."
        )
        doc.image(path.name, f"per-class accuracy, {part} classes")

    # Stage-1 curves.
    stage1 = read_epochs(stage_epochs_path(run_dir, 1))
    stage2 = read_epochs(stage_epochs_path(run_dir, 2))
    result_path = stage1_result_path(run_dir)
    best = json.loads(result_path.read_text()) if result_path.is_file() else None
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
    from avzsl.pipeline.run.config import PAPER_MASK_RATIO
    from avzsl.pipeline.sweep.methods import TABLE_HEADER, method_table_cells, read_method_table

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
    from avzsl.pipeline.sweep.plan import read_summary

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
