"""``avzsl-train --benchmark ucf`` on a UCF-GZSL-shaped cache.

Checks the built-in split files, stem matching of cache ids (``Class/v_x.avi`` vs ``v_x``), case-insensitive class
names, and the report of benchmark videos missing from the cache.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from avzsl.data_manifests import benchmark_splits, class_phrases, released_text_embeddings
from avzsl.pipeline.cache import ClassTable, VideoFeatures, write_cache
from avzsl.pipeline.cli import train as cli_train


def test_benchmark_ucf_uses_builtin_splits_and_reports_missing_videos(tmp_path: Path) -> None:
    splits = benchmark_splits("ucf")
    rows = {f: label for name in splits.stages for f, label in splits[name].videos}
    rng = np.random.default_rng(0)
    words = released_text_embeddings("ucf")
    phrases = class_phrases("ucf")
    labels = sorted({label for label in rows.values()}, key=str.lower)
    canon = {}
    for label in labels:
        canon.setdefault(label.lower(), label)
    names = sorted(canon.values())
    table = ClassTable(names, [phrases[n] for n in names], np.stack([words[phrases[n]] for n in names]), {})
    dropped = sorted(rows)[::50]  # ~2 % of the benchmark's videos are absent from this cache
    videos = []
    for filename, label in sorted(rows.items()):
        if filename in dropped:
            continue
        w = words[phrases[label]]
        audio = np.tanh(np.resize(w, 64) + 0.5 * rng.standard_normal(64)).astype(np.float32)
        visual = np.tanh(np.resize(w[::-1], 64) + 0.5 * rng.standard_normal(64)).astype(np.float32)
        videos.append(VideoFeatures(f"{label}/{filename}.avi", label, audio, visual))
    cache = tmp_path / "cache"
    # write_cache finalizes: a cache is trained on only once finalized.
    write_cache(cache, videos, table, {"encoder": {"name": "synthetic"}, "weights": {"sha256": "synthetic"}},
                len(videos))
    run = tmp_path / "run"
    args = ["--cache", str(cache), "--benchmark", "ucf", "--out", str(run), "--epochs", "2", "--device", "cpu"]
    args += ["--batch-size", "32", "--batches-per-epoch", "3"]
    assert cli_train.main(args) == 0
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["benchmark"] == "ucf" and config["method_options"]["mask_ratio"] == 0.1  # the paper's UCF rho
    with (run / "missing_videos.csv").open() as f:
        missing = list(csv.DictReader(f))
    # A video missing from the cache is reported once per stage split that lists it.
    expected = sum(1 for name in splits.stages for f, _ in splits[name].videos if f in set(dropped))
    assert len(missing) == expected and {m["filename"] for m in missing} == set(dropped)
    assert "not in the cache" in (run / "train.log").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["per_class_unseen"]) == 9 and len(metrics["per_class_seen"]) == 42
