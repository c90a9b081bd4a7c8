"""TCAF on per-window sequences: cross-modal attention mask, padding invariance, learning, refusal without sequences;
the protocol's sequence loading and avzsl-train --method tcaf on real cache files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from avzsl.model.registry import FeatureBatch, get_method
from avzsl.model.tcaf import cross_modal_mask
from avzsl.pipeline.cache import list_shards, read_shard
from avzsl.pipeline.cli import evaluate as cli_evaluate
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.run.config import TrainConfig
from avzsl.pipeline.train.protocol import load_protocol_data
from avzsl.pipeline.train.stage_data import PartData
from tests.logtext import refusal_text
from tests.methods_toy import accuracy, build, one_thread, toy_problem, train_steps  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"encoder_hidden": 16, "decoder_hidden": 16, "dim": 16, "depth": 1, "heads": 2, "head_dim": 8,
         "mlp_dim": 16, "embed_dim": 8, "dim_out": 8, "dropout": 0.0, "encoder_dropout": 0.1, "audio_scale": 1.0}


def _with_sequences(batch: FeatureBatch, seed: int = 0, max_t: int = 4) -> FeatureBatch:
    """Per-window features around each video's features; 2..max_t real windows, zero-padded to max_t."""
    g = torch.Generator().manual_seed(seed)
    n = len(batch)
    lengths = torch.randint(2, max_t + 1, (n,), generator=g)
    mask = torch.arange(max_t)[None, :] < lengths[:, None]
    a = (batch.audio[:, None] + 0.1 * torch.randn(n, max_t, batch.audio.shape[1], generator=g)) * mask[..., None]
    v = (batch.visual[:, None] + 0.1 * torch.randn(n, max_t, batch.visual.shape[1], generator=g)) * mask[..., None]
    return FeatureBatch(batch.audio, batch.visual, a, v, mask)


def test_cross_modal_mask_blocks_within_modality_and_padding() -> None:
    valid = torch.tensor([[True, False]])  # T = 2: tokens [cls, a1, a2, v1, v2]
    m = cross_modal_mask(valid)[0]
    expected = torch.tensor([
        [1, 1, 0, 1, 0],  # cls -> every valid token
        [1, 0, 0, 1, 0],  # a1 -> cls, v1 (not itself, not the padded window)
        [0, 0, 0, 0, 0],  # padded query row
        [1, 1, 0, 0, 0],  # v1 -> cls, a1
        [0, 0, 0, 0, 0],
    ], dtype=torch.bool)
    assert torch.equal(m, expected)


def test_scores_ignore_padded_windows() -> None:
    batch, labels, emb = toy_problem(per_class=4)
    seq = _with_sequences(batch)
    method = build("tcaf", **SMALL)
    method.eval()
    with torch.no_grad():
        base = method.scores(seq, emb)
        # Garbage in the padded windows must not change anything (BatchNorm in eval mode, masked attention).
        noisy = FeatureBatch(seq.audio, seq.visual, seq.audio_seq + 5.0 * (~seq.seq_mask)[..., None],
                             seq.visual_seq, seq.seq_mask)
        torch.testing.assert_close(method.scores(noisy, emb), base)
    assert base.shape == (len(labels), emb.shape[0])


def test_tcaf_learns_and_needs_sequences() -> None:
    assert get_method("tcaf").needs_sequences
    batch, labels, emb = toy_problem()
    seq = _with_sequences(batch)
    method = build("tcaf", **SMALL)
    losses = train_steps(method, seq, labels, emb, steps=50, lr=3e-3)
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    assert accuracy(method, seq, labels, emb) > 0.6
    with pytest.raises(ValueError, match="per-window sequences"):
        method.scores(batch, emb)


# ------------------------------------------------------------------------------------------------------------------
# TCAF through the protocol: sequences loaded from a real cache, avzsl-train end to end, the refusal without them

TRAIN_TINY = ["--epochs", "1", "--batch-size", "32", "--device", "cpu"]


def _config(cache: Path, splits: Path, method: str = "tcaf", **options: object) -> TrainConfig:
    return TrainConfig(cache=str(cache), splits=str(splits), method=method, method_options=dict(options))


def test_feature_batches_slice_sequences() -> None:
    n, t = 6, 3
    part = PartData(torch.randn(n, 4), torch.randn(n, 5), torch.zeros(n, dtype=torch.long), ["a"],
                    torch.ones(1, dtype=torch.bool), torch.randn(1, 2), [f"v{i}" for i in range(n)],
                    torch.randn(n, t, 4), torch.randn(n, t, 5), torch.rand(n, t) > 0.5)
    rows = torch.tensor([4, 1, 1])
    for index in (rows, slice(1, 4)):
        batch = part.feature_batch(index)
        assert len(batch) == len(part.audio[index])
        for got, full in ((batch.audio_seq, part.audio_seq), (batch.visual_seq, part.visual_seq),
                          (batch.seq_mask, part.seq_mask)):
            assert torch.equal(got, full[index])
    moved = part.to("cpu")
    assert torch.equal(moved.feature_batch().seq_mask, part.seq_mask)


def test_protocol_loads_padded_sequences_from_the_cache(windowed_cache) -> None:
    cache, splits = windowed_cache
    shard_videos = {v.video_id: v for shard in list_shards(cache) for v in read_shard(shard, with_sequences=True)}
    data, _ = load_protocol_data(_config(cache, splits))
    for name in ("train1", "val", "train2", "test"):
        part = getattr(data, name)
        n = len(part)
        lengths = [len(shard_videos[v].audio_seq) for v in part.video_ids]
        assert part.audio_seq.shape == (n, max(lengths), part.audio.shape[1])
        assert part.visual_seq.shape == (n, max(lengths), part.visual.shape[1])
        assert part.seq_mask.dtype == torch.bool and part.seq_mask.sum(1).tolist() == lengths
        for i in (0, n - 1):
            video, k = shard_videos[part.video_ids[i]], lengths[i]
            assert torch.equal(part.audio_seq[i, :k], torch.from_numpy(video.audio_seq))
            assert torch.equal(part.visual_seq[i, :k], torch.from_numpy(video.visual_seq))
            assert not part.audio_seq[i, k:].any() and not part.visual_seq[i, k:].any()
            # The mean features are the mean of the stored windows (the cache's own consistency).
            torch.testing.assert_close(part.audio[i], part.audio_seq[i, :k].mean(0))
    # max_windows keeps the first windows of every video.
    trimmed, _ = load_protocol_data(_config(cache, splits, max_windows=2))
    assert trimmed.test.audio_seq.shape[1] == 2
    assert torch.equal(trimmed.test.audio_seq, data.test.audio_seq[:, :2])
    assert torch.equal(trimmed.test.seq_mask, data.test.seq_mask[:, :2])


def test_methods_without_sequences_never_read_them(windowed_cache, monkeypatch) -> None:
    from avzsl.pipeline.train import protocol

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("sequences were read for a method that does not need them")

    monkeypatch.setattr(protocol, "load_sequences", refuse)
    data, _ = load_protocol_data(_config(*windowed_cache, method="ce_probe"))
    assert all(getattr(data, p).audio_seq is None and getattr(data, p).seq_mask is None
               for p in ("train1", "val", "train2", "test"))


def test_avzsl_train_tcaf_runs_the_two_stage_protocol(windowed_cache, tmp_path: Path, capsys) -> None:
    cache, splits = windowed_cache
    run = tmp_path / "run"
    argv = ["--cache", str(cache), "--splits", str(splits), "--out", str(run), "--method", "tcaf", *TRAIN_TINY]
    assert cli_train.main(argv) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["method"] == "tcaf" and metrics["epoch"] == 1
    assert all(math.isfinite(metrics[k]) and 0 <= metrics[k] <= 100 for k in ("S", "U", "H", "ZSL"))
    assert (run / "stage1" / "result.json").is_file() and (run / "model.pt").is_file()
    assert [json.loads(line)["epoch"] for line in (run / "stage2" / "epochs.jsonl").read_text().splitlines()] == [1]
    assert "test: per-window sequences of" in (run / "train.log").read_text()
    # avzsl-evaluate loads the sequences again and reproduces the test numbers.
    capsys.readouterr()
    assert cli_evaluate.main(["--run", str(run), "--device", "cpu", "--json"]) == 0
    again = json.loads((run / "metrics.json").read_text())
    assert {k: again[k] for k in ("S", "U", "H", "ZSL")} == {k: metrics[k] for k in ("S", "U", "H", "ZSL")}


def test_avzsl_train_tcaf_refuses_a_cache_without_sequences(synthetic_cache, tmp_path: Path) -> None:
    cache, splits = synthetic_cache
    run = tmp_path / "run"
    argv = ["--cache", str(cache), "--splits", str(splits), "--out", str(run), "--method", "tcaf", *TRAIN_TINY]
    assert cli_train.main(argv) == 2
    text = refusal_text(run / "train.log")
    assert f"{cache}: method 'tcaf' needs per-window sequences" in text
    assert "without --no-sequences" in text and "avzsl-synth --windows N" in text
    assert not (run / "stage1").exists() and not (run / "config.json").exists()
