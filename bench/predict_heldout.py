"""Top-1 of a trained run and of ConSE on clips of media the run never saw, per calibration rule (issue 19).

Usage:
    python bench/heldout_media.py --out HELD                      # the held-out clips (Debian packages)
    avzsl-extract --videos HELD/videos --out HELD/cache --encoder effnet_lite0_aisfx
    python bench/predict_heldout.py --run DEMO/run --heldout-cache HELD/cache [--bootstrap 2000]

The run must be trained on ``effnet_lite0_aisfx`` features (``avzsl-demo``). Every score comes from stored
features through the code ``avzsl-predict`` uses for a feature cache (:class:`Predictor` ranking, the ``conse``
method), so no clip is decoded twice. Printed (Markdown), top-1 accuracy over clips (x100) for each setting:

- ``full gamma``: the run's gamma subtracted from every seen candidate (``--seen-calibration full``; the default
  before issue 19);
- ``off``: no shift;
- ``auto``: this version's default (:mod:`avzsl.pipeline.predict.calibration`: no shift, chosen from this
  measurement);
- ``gamma x C/C_bench``: the run's gamma scaled by the candidate count ratio (a rescaling rule that was measured and
  not chosen);
- ``ConSE``: the training-free ``conse`` method (visual ImageNet head + GloVe), no run;
- ``auto + ConSE``: the run's ``auto`` ranking scores and the ConSE cosines, each standardised over the candidate
  list of the clip (z-score), summed;
- ``chance``: 1/C.

A second table gives top-1 for shifts between 0 and the run's gamma (how the rule was chosen), a third the
held-out clips against their own names by the demo-run group of their class (seen, test-unseen, new).

Settings (clips x candidate list): the held-out clips against their own class names; against those names plus the
run's benchmark list; the held-out clips of the run's classes against the benchmark list (where ``auto`` applies
gamma); and two controls on the run's own test clips (the media it was trained on): the benchmark list, and the
held-out class names. ``±`` is 1.96 bootstrap standard errors, resampling whole media groups (the clips of one
picture/recording pair; for the run's own clips, of one class), since clips of one group are not independent;
``Δ auto-off``, ``Δ full-off`` and ``Δ fused-auto`` (``auto + ConSE`` minus ``auto``) are paired differences with
their intervals: the noise a ranking is judged against.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avzsl.extractors.encoders.registry import build_encoder
from avzsl.extractors.text.class_names import ClassNameEmbedder
from avzsl.model.registry import FeatureBatch
from avzsl.pipeline.cache import load_features
from avzsl.pipeline.data.splits import load_splits
from avzsl.pipeline.predict.calibration import plan_calibration
from avzsl.pipeline.predict.conse import conse_scorer
from avzsl.pipeline.predict.inputs import CachedVideo
from avzsl.pipeline.predict.predictor import Predictor

RULES = ("full gamma", "off", "auto", "gamma x C/C_bench", "ConSE", "auto + ConSE")


@dataclass
class Clips:
    """Features, true class names and media groups of N clips (clips of one group share their picture and
    recording, so they are resampled together)."""

    audio: torch.Tensor
    visual: torch.Tensor
    labels: list[str]
    groups: list[str]

    def subset(self, keep: Sequence[bool]) -> Clips:
        rows = [i for i, k in enumerate(keep) if k]
        return Clips(self.audio[rows], self.visual[rows], [self.labels[i] for i in rows],
                     [self.groups[i] for i in rows])


def zscore(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean(dim=1, keepdim=True)) / x.std(dim=1, keepdim=True).clamp_min(1e-6)


def rule_scores(predictor: Predictor, conse, clips: Clips, names: list[str], benchmark: list[str]) -> dict:
    """(N, C) ranking scores of every rule for the clips against ``names``."""
    candidates = predictor.candidates(names)
    videos = {str(i): CachedVideo(clips.audio[i].numpy(), clips.visual[i].numpy()) for i in range(len(clips.labels))}
    raw = predictor._calibration_space_scores(videos, candidates)
    seen = torch.tensor(candidates.seen, dtype=raw.dtype)
    auto = plan_calibration("auto", candidates.names, candidates.seen, predictor.gamma, predictor.score_space(),
                            benchmark)
    with torch.no_grad():
        cos = conse.scores(FeatureBatch(clips.audio, clips.visual), torch.from_numpy(candidates.embeddings))
    scaled = predictor.gamma * len(names) / len(benchmark)
    auto_scores = raw - auto.shift * seen
    return {
        "full gamma": raw - predictor.gamma * seen,
        "off": raw,
        "auto": auto_scores,
        "gamma x C/C_bench": raw - scaled * seen,
        "ConSE": cos,
        "auto + ConSE": zscore(auto_scores) + zscore(cos),
    }


def hits(scores: torch.Tensor, names: list[str], labels: list[str]) -> np.ndarray:
    index = {n.lower(): i for i, n in enumerate(names)}
    truth = torch.tensor([index[c.lower()] for c in labels])
    return (scores.argmax(dim=1) == truth).numpy().astype(float)


def bootstrap_se(values: np.ndarray, groups: Sequence[str], rounds: int, rng: np.random.Generator) -> float:
    """Standard error of the mean of ``values`` by a cluster bootstrap: whole media groups are resampled."""
    keys = sorted(set(groups))
    if len(keys) < 2:
        return float("nan")
    members = [np.array([i for i, g in enumerate(groups) if g == k]) for k in keys]
    sums = np.array([values[m].sum() for m in members])
    counts = np.array([m.size for m in members])
    draws = rng.integers(0, len(keys), size=(rounds, len(keys)))
    return float((sums[draws].sum(axis=1) / counts[draws].sum(axis=1)).std())


def row(label: str, predictor: Predictor, conse, clips: Clips, names: list[str], benchmark: list[str],
        rounds: int, rng: np.random.Generator) -> str:
    per_rule = {r: hits(s, names, clips.labels) for r, s in rule_scores(predictor, conse, clips, names,
                                                                        benchmark).items()}
    cells = [f"{100 * h.mean():.1f} ± {196 * bootstrap_se(h, clips.groups, rounds, rng):.1f}"
             for h in per_rule.values()]
    for rule, base in (("auto", "off"), ("full gamma", "off"), ("auto + ConSE", "auto")):
        delta = per_rule[rule] - per_rule[base]
        cells.append(f"{100 * delta.mean():+.1f} ± {196 * bootstrap_se(delta, clips.groups, rounds, rng):.1f}")
    seen = sum(n.lower() in {s.lower() for s in predictor.seen_classes} for n in names)
    return (f"| {label} | {len(clips.labels)} | {len(names)} ({seen} seen) | " + " | ".join(cells)
            + f" | {100 / len(names):.1f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a run trained on effnet_lite0_aisfx features")
    parser.add_argument("--heldout-cache", type=Path, required=True, help="avzsl-extract cache of the held-out clips")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap rounds for the intervals")
    parser.add_argument("--top-labels", type=int, default=10, help="ConSE: T")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    predictor = Predictor(args.run, encode_videos=False)
    benchmark = predictor.benchmark_list()
    if not benchmark:
        raise SystemExit("the run's benchmark candidate list is unknown (no test_classes, split files missing)")
    embedder = ClassNameEmbedder(None)
    conse = conse_scorer(build_encoder("effnet_lite0_aisfx", None), embedder, embedder.dim, args.top_labels)

    table = load_features(args.heldout_cache)
    # A held-out clip is CLASS/SOURCE_STAMP_K.mp4: its group is its picture/recording pair.
    held = Clips(table.audio, table.visual, list(table.class_names),
                 [vid.rsplit("_", 1)[0] for vid in table.video_ids])
    held_names = sorted(set(held.labels))
    bench_lower = {b.lower() for b in benchmark}
    union = benchmark + [n for n in held_names if n.lower() not in bench_lower]
    known = held.subset([c.lower() in bench_lower for c in held.labels])

    cfg = predictor.config
    splits = load_splits(Path(cfg.splits))
    test_ids = [v for part in ("stage_2_test_seen", "stage_2_test_unseen")
                for v, _ in splits[part].videos_of_listed_classes()]
    own_table = load_features(Path(cfg.cache), test_ids)
    # Every clip of a class of the run's world shares the class's one picture and recording: its group is the class.
    own = Clips(own_table.audio, own_table.visual, list(own_table.class_names), list(own_table.class_names))
    held_lower = {n.lower() for n in held_names}
    own_held = own.subset([c.lower() in held_lower for c in own.labels])

    print(f"run {args.run} (gamma {predictor.gamma:.4g}, benchmark list {len(benchmark)} classes); held-out cache "
          f"{args.heldout_cache}: {len(held.labels)} clips of {len(held_names)} classes; ConSE T = {args.top_labels}")
    print()
    print("| clips | n | candidates | " + " | ".join(RULES) + " | Δ auto-off | Δ full-off | Δ fused-auto | chance |")
    print("|---|---|---|" + "---|" * (len(RULES) + 4))
    settings = [
        ("held-out, their own names", held, held_names),
        ("held-out, own names + benchmark list", held, union),
        ("held-out of the run's classes, benchmark list", known, benchmark),
        ("control: run's test clips, benchmark list", own, benchmark),
        ("control: run's test clips of held-out classes, held-out names", own_held, held_names),
    ]
    for label, clips, names in settings:
        if clips.labels:
            print(row(label, predictor, conse, clips, names, benchmark, args.bootstrap, rng))
    shifts = [0.0, 0.5, 1.0, 2.0, 3.0, 5.0, predictor.gamma]
    print()
    print("| clips | candidates | " + " | ".join(f"shift {g:.3g}" for g in shifts) + " |")
    print("|---|---|" + "---|" * len(shifts))
    for label, clips, names in settings:
        if clips.labels:
            raw = rule_scores(predictor, conse, clips, names, benchmark)["off"]
            seen = torch.tensor(predictor.candidates(names).seen, dtype=raw.dtype)
            cells = [f"{100 * hits(raw - g * seen, names, clips.labels).mean():.1f}" for g in shifts]
            print(f"| {label} | {len(names)} | " + " | ".join(cells) + " |")
    print()
    print("| held-out clips (own names) of | n | " + " | ".join(RULES) + " |")
    print("|---|---|" + "---|" * len(RULES))
    seen_lower = {c.lower() for c in predictor.seen_classes}
    scores = rule_scores(predictor, conse, held, held_names, benchmark)
    for group in ("seen", "test-unseen", "new"):
        keep = [("seen" if c.lower() in seen_lower else "test-unseen" if c.lower() in bench_lower else "new") == group
                for c in held.labels]
        labels = [c for c, k in zip(held.labels, keep, strict=True) if k]
        if labels:
            cells = [f"{100 * hits(s[torch.tensor(keep)], held_names, labels).mean():.1f}" for s in scores.values()]
            print(f"| {group} classes | {len(labels)} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
