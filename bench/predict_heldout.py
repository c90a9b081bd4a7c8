"""Top-1 of a trained run and of ConSE on the demo's test clips, media the run never trained on (issue 19).

Usage:
    avzsl-demo --out DEMO                                  # the real-media demo: held-out test media by design
    python bench/predict_heldout.py --run DEMO/run [--bootstrap 2000]

The demo's test clips of its trained classes are made from a picture and a recording held out from training
(``pipeline/synth/real_catalogue.py``), and its test-unseen classes are never trained on, so every test clip is new
media. Every score comes from stored features through the code ``avzsl-predict`` uses (:class:`Predictor`'s
scoring, the ``conse`` method), so no clip is decoded twice. Printed (Markdown), top-1 accuracy over clips (x100):

- ``full gamma``: the run's gamma subtracted from every seen candidate (``--seen-calibration full``);
- ``off``: no shift;
- ``auto``: this version's default (:mod:`avzsl.pipeline.predict.calibration`);
- ``ConSE``: the training-free ``conse`` method (visual ImageNet head + GloVe), no run;
- ``auto + ConSE``: the run's ``auto`` ranking scores and the ConSE cosines, each standardised over the candidate
  list of the clip (z-score), summed;
- ``chance``: 1/C.

``±`` is 1.96 bootstrap standard errors resampling whole classes (the test clips of a class share their media);
``Δ auto-off``, ``Δ full-off`` and ``Δ fused-auto`` are paired differences with their intervals. A second table
gives top-1 for shifts between 0 and the run's gamma. The control row is the run's stage-2 training clips (media it
trained on).
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
from avzsl.pipeline.predict.predictor import Predictor

RULES = ("full gamma", "off", "auto", "ConSE", "auto + ConSE")


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
    # the run's scores in its calibration space, no shift (the ranking score of --seen-calibration off)
    raw = torch.from_numpy(predictor.scoring(candidates, False).table(clips.audio.numpy(), clips.visual.numpy()).score)
    seen = torch.tensor(candidates.seen, dtype=raw.dtype)
    auto = plan_calibration("auto", candidates.names, candidates.seen, predictor.gamma, predictor.score_space(),
                            benchmark)
    with torch.no_grad():
        cos = conse.scores(FeatureBatch(clips.audio, clips.visual), torch.from_numpy(candidates.embeddings))
    auto_scores = raw - auto.shift * seen
    return {
        "full gamma": raw - predictor.gamma * seen,
        "off": raw,
        "auto": auto_scores,
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


def split_clips(cfg, part: str) -> Clips:  # noqa: ANN001 - a run config
    """The clips of one stage split of the run's split folder, from the run's cache; a class is a media group."""
    splits = load_splits(Path(cfg.splits))
    ids = [v for v, _ in splits[part].videos_of_listed_classes()]
    table = load_features(Path(cfg.cache), ids)
    return Clips(table.audio, table.visual, list(table.class_names), list(table.class_names))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="a run of avzsl-demo (effnet_lite0_aisfx features)")
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
    cfg = predictor.config
    seen_test = split_clips(cfg, "stage_2_test_seen")
    unseen_test = split_clips(cfg, "stage_2_test_unseen")
    both = Clips(torch.cat([seen_test.audio, unseen_test.audio]), torch.cat([seen_test.visual, unseen_test.visual]),
                 seen_test.labels + unseen_test.labels, seen_test.groups + unseen_test.groups)
    trained = split_clips(cfg, "stage_2_train")
    unseen_names = sorted(set(unseen_test.labels))

    print(f"run {args.run} (gamma {predictor.gamma:.4g}, benchmark list {len(benchmark)} classes); test clips: "
          f"{len(seen_test.labels)} of trained classes (held-out media), {len(unseen_test.labels)} of "
          f"{len(unseen_names)} test-unseen classes; ConSE T = {args.top_labels}")
    print()
    print("| clips | n | candidates | " + " | ".join(RULES) + " | Δ auto-off | Δ full-off | Δ fused-auto | chance |")
    print("|---|---|---|" + "---|" * (len(RULES) + 4))
    settings = [
        ("all test clips (new media)", both, benchmark),
        ("test clips of trained classes (held-out media)", seen_test, benchmark),
        ("test clips of test-unseen classes", unseen_test, benchmark),
        ("test clips of test-unseen classes, their names (ZSL)", unseen_test, unseen_names),
        ("control: stage-2 training clips (trained media)", trained, benchmark),
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
