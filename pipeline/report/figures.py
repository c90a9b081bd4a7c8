"""The report's figures (PNG, matplotlib with the non-interactive Agg backend): per-class accuracy, stage-1
validation curves, training losses, the t-SNE of paper Fig. 3 and H against the mask proportion (paper Fig. 2).

matplotlib and scikit-learn are optional (``pip install avzsl[report]``); they are imported only inside the
functions that draw, so a sweep-only report needs neither.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.run.config import read_run_config
from avzsl.pipeline.run.model_file import load_run_model
from avzsl.pipeline.sweep.stats import METRIC_KEYS
from avzsl.pipeline.train.protocol import load_protocol_data

_logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install avzsl[report]"
TSNE_SEED = 0


class ReportError(UserError):
    """The report cannot be made (missing optional packages, not a finished run, bad option)."""


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
    from sklearn.manifold import TSNE
    from sklearn.metrics import silhouette_score

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
