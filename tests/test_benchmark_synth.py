"""The benchmark-shaped synthetic generator: real split files and embeddings, partial linear transfer, seeds."""

from __future__ import annotations

import collections
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from avzsl.data_manifests import benchmark_splits, class_phrases, released_text_embeddings
from avzsl.model.metrics import gzsl_metrics
from avzsl.pipeline.cache import load_features, read_cache_info, read_class_table, read_shard
from avzsl.pipeline.cli import synth as cli_synth
from avzsl.pipeline.synth.benchmark import BenchmarkSynthSpec, generate_benchmark, write_benchmark_cache
from avzsl.pipeline.train.stage_data import build_protocol_data

SMALL = BenchmarkSynthSpec(benchmark="ucf", feature_dim=64, latent_dim=16, hidden_dim=32)


@pytest.fixture(scope="module")
def ucf_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ucf"
    assert cli_synth.main(["--benchmark", "ucf", "--out", str(out), "--seed", "3"]) == 0
    return out


def test_cache_has_the_benchmark_videos_counts_and_embeddings(ucf_cache: Path) -> None:
    splits = benchmark_splits("ucf")
    table = load_features(ucf_cache)
    classes = read_class_table(ucf_cache)
    data = build_protocol_data(splits, table, classes)
    assert data.num_missing == 0
    assert (len(data.train1), len(data.val), len(data.train2), len(data.test)) == (3174, 353 + 1467, 4994, 555 + 1267)
    assert table.audio.shape == (6816, 512) and table.visual.shape == (6816, 512)
    # Per-class counts follow the split csvs.
    expected = collections.Counter(label.lower() for f, label in splits["stage_2_test_unseen"].videos)
    got = collections.Counter(data.test.classes[i].lower() for i in data.test.labels.tolist()
                              if not bool(data.test.seen[i]))
    assert got == expected
    released = released_text_embeddings("ucf")
    phrases = class_phrases("ucf")
    for name, vector in zip(classes.names, classes.embeddings, strict=True):
        np.testing.assert_array_equal(vector, released[phrases[name]])
    info = read_cache_info(ucf_cache)
    assert info["synthetic"]["seed"] == 3 and info["encoder"]["name"] == "benchmark_synth"
    assert (table.audio >= 0).all()  # post-ReLU-like features with a common offset


def test_a_linear_map_transfers_only_partly(ucf_cache: Path) -> None:
    data = build_protocol_data(benchmark_splits("ucf"), load_features(ucf_cache), read_class_table(ucf_cache))
    train, val = data.train1, data.val
    x = torch.cat([train.audio, train.visual], 1).double()
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xs = (x - mu) / sd
    y = train.class_emb.double()[train.labels]
    w = torch.linalg.solve(xs.T @ xs + float(len(xs)) * torch.eye(xs.shape[1], dtype=xs.dtype), xs.T @ y)
    pred = torch.nn.functional.normalize(((torch.cat([val.audio, val.visual], 1).double() - mu) / sd) @ w, dim=1)
    scores = pred @ torch.nn.functional.normalize(val.class_emb.double(), dim=1).T
    m = gzsl_metrics(scores, val.labels, val.seen, 0.0)
    chance = 1.0 / int((~val.seen).sum())
    assert 1.5 * chance < m.ZSL < 0.8, m.ZSL  # transfers, but far from perfectly
    assert m.S > 0.3


def test_seed_fixes_everything_and_changes_with_it() -> None:
    a, b, c = generate_benchmark(SMALL), generate_benchmark(SMALL), generate_benchmark(replace(SMALL, seed=1))
    assert [v.video_id for v in a.videos] == [v.video_id for v in b.videos]
    stack = lambda d: np.stack([v.audio_mean for v in d.videos])  # noqa: E731
    np.testing.assert_array_equal(stack(a), stack(b))
    assert not np.array_equal(stack(a), stack(c))


def test_windows_give_sequences_whose_mean_is_the_video_feature(tmp_path: Path) -> None:
    data = generate_benchmark(replace(SMALL, windows=4))
    lengths = {v.audio_seq.shape[0] for v in data.videos}
    assert min(lengths) >= 2 and max(lengths) <= 6 and len(lengths) > 1
    v = data.videos[0]
    np.testing.assert_allclose(v.audio_seq.mean(0), v.audio_mean, rtol=1e-6)
    assert v.visual_seq.shape == (v.audio_seq.shape[0], 64) and v.window_sec.shape == (v.audio_seq.shape[0], 2)
    out = tmp_path / "seq"
    write_benchmark_cache(out, replace(SMALL, windows=3))
    shard = sorted((out / "shards").glob("*.h5"))[0]
    with h5py.File(shard, "r") as f:
        assert "audio_seq" in f
    assert read_shard(shard, with_sequences=True)[0].audio_seq.shape[1] == 64


def test_existing_output_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    assert cli_synth.main(["--benchmark", "ucf", "--out", str(tmp_path / "x")]) == 2
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine"
