"""The two-stage protocol end to end on a synthetic cache: learning, resume after SIGKILL, run-directory guards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import torch

from avzsl.pipeline.cli import evaluate as cli_evaluate
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.run.checkpoint import load_checkpoint
from avzsl.pipeline.train import protocol
from avzsl.pipeline.train.trainer import class_balanced_batch

FAST = ["--epochs", "6", "--batch-size", "32", "--device", "cpu"]


def _train_args(cache: Path, splits: Path, out: Path, *extra: str) -> list[str]:
    return ["--cache", str(cache), "--splits", str(splits), "--out", str(out), *FAST, *extra]


def test_class_balanced_batch_is_uniform_over_classes() -> None:
    # 90 samples of class 0 and 10 of class 1: batches still draw both classes equally often.
    labels = torch.tensor([0] * 90 + [1] * 10)
    gen = torch.Generator().manual_seed(0)
    picked = torch.cat([class_balanced_batch(labels, 3, 256, gen) for _ in range(20)])
    share = (labels[picked] == 1).float().mean().item()
    assert 0.45 < share < 0.55
    # Class 2 has no samples and is never drawn; every index is valid.
    assert picked.max() < 100


def test_training_learns_zero_shot_and_evaluate_reports(synthetic_cache, tmp_path: Path, capsys, monkeypatch) -> None:
    cache, splits = synthetic_cache
    run = tmp_path / "run"
    assert cli_train.main(_train_args(cache, splits, run)) == 0
    trained = capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("S", "U", "H", "ZSL", "gamma", "epoch", "per_class_seen", "per_class_unseen", "calibration"):
        assert key in metrics
    # 4 test-unseen classes: chance ZSL is 25 %.
    assert metrics["ZSL"] > 60
    assert metrics["U"] > 2 * 100 / 16
    assert len(metrics["per_class_unseen"]) == 4 and len(metrics["per_class_seen"]) == 12
    lines = (run / "stage1" / "epochs.jsonl").read_text().splitlines()
    assert len(lines) == 6 and "val" in json.loads(lines[0])
    assert 1 <= metrics["epoch"] <= 6
    capsys.readouterr()
    assert cli_evaluate.main(["--run", str(run), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert f"{metrics['H']:8.2f}" in out
    # A finished run started again is up to date and changes nothing; it does not load the cache's features.
    def no_cache_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finished run loaded the cache")

    monkeypatch.setattr(protocol, "load_protocol_data", no_cache_load)
    monkeypatch.setattr(protocol, "load_features", no_cache_load)
    stamp = (run / "model.pt").stat().st_mtime_ns
    assert cli_train.main(_train_args(cache, splits, run)) == 0
    assert capsys.readouterr().out == trained
    assert (run / "model.pt").stat().st_mtime_ns == stamp
    assert "up to date" in (run / "train.log").read_text()


def test_feature_standardization_is_stored_in_the_model(synthetic_cache, tmp_path: Path) -> None:
    cache, splits = synthetic_cache
    run = tmp_path / "run"
    assert cli_train.main(_train_args(cache, splits, run, "--epochs", "1", "--standardize-features")) == 0
    state = load_checkpoint(run / "model.pt")["state_dict"]
    assert not torch.allclose(state["net.audio_shift"], torch.zeros_like(state["net.audio_shift"]))
    assert (state["net.visual_scale"] > 0).all()


def test_different_config_is_refused_unless_overwrite(synthetic_cache, tmp_path: Path) -> None:
    cache, splits = synthetic_cache
    run = tmp_path / "run"
    assert cli_train.main(_train_args(cache, splits, run, "--epochs", "1")) == 0
    assert cli_train.main(_train_args(cache, splits, run, "--epochs", "1", "--seed", "7")) == 2
    log = (run / "train.log").read_text()
    assert "different configuration" in log
    # The refusal names what changed, old -> new, not only the two hashes.
    assert "differs in: seed: 42 -> 7" in log
    assert "epochs" not in log.split("differs in:")[-1].splitlines()[0]
    assert cli_train.main(_train_args(cache, splits, run, "--epochs", "1", "--seed", "7", "--overwrite")) == 0


def test_few_optimizer_steps_per_epoch_are_logged_once(synthetic_cache, tmp_path: Path) -> None:
    cache, splits = synthetic_cache
    run = tmp_path / "run"
    # About 110 stage-1 training videos in batches of 32: 4 optimizer steps per epoch.
    assert cli_train.main(_train_args(cache, splits, run, "--epochs", "2")) == 0
    lines = [x for x in (run / "train.log").read_text().splitlines() if "optimizer step(s) per epoch" in x]
    assert len(lines) == 1, lines  # once per run, not once per stage
    assert "only 4 optimizer step(s)" in lines[0] and "batch size 32" in lines[0]
    assert "--batches-per-epoch" in lines[0]
    enough = tmp_path / "enough"
    assert cli_train.main(_train_args(cache, splits, enough, "--epochs", "1", "--batches-per-epoch", "5")) == 0
    assert "optimizer step(s) per epoch" not in (enough / "train.log").read_text()


def test_loss_variants_and_bad_inputs(synthetic_cache, tmp_path: Path) -> None:
    cache, splits = synthetic_cache
    assert cli_train.main(_train_args(cache, splits, tmp_path / "cls", "--epochs", "1", "--loss", "cls")) == 0
    history = [json.loads(x) for x in (tmp_path / "cls" / "stage1" / "epochs.jsonl").read_text().splitlines()]
    assert history[0]["kd"] == 0 and history[0]["mask"] == 0
    assert cli_train.main(_train_args(tmp_path / "nowhere", splits, tmp_path / "r2")) == 2
    assert cli_train.main(_train_args(cache, tmp_path / "nosplits", tmp_path / "r3")) == 2


def _run_cli(args: list[str], kill_at: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("AVZSL_KILL_AT", None)
    if kill_at:
        env["AVZSL_KILL_AT"] = kill_at
    code = "import sys; from avzsl.pipeline.cli.train import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=300)


def _epochs_without_time(path: Path) -> list[dict]:
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    for row in rows:
        row.pop("seconds")
    return rows


def test_sigkill_then_resume_gives_the_uninterrupted_result(synthetic_cache, tmp_path: Path) -> None:
    cache, splits = synthetic_cache
    reference = tmp_path / "reference"
    done = _run_cli(_train_args(cache, splits, reference))
    assert done.returncode == 0, done.stderr
    expected = json.loads((reference / "metrics.json").read_text())
    # Kill points: after a stage-1 checkpoint, between writing a checkpoint's temporary file and its rename,
    # and in stage 2 after its first epoch.
    run = tmp_path / "killed"
    for point in ("stage1-epoch-2", "before-rename:last.pt", "stage2-epoch-1", "before-rename:model.pt"):
        killed = _run_cli(_train_args(cache, splits, run), kill_at=point)
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr[-2000:])
    resumed = _run_cli(_train_args(cache, splits, run))
    assert resumed.returncode == 0, resumed.stderr
    assert "resum" in resumed.stderr
    assert json.loads((run / "metrics.json").read_text()) == expected
    for stage in ("stage1", "stage2"):
        assert _epochs_without_time(run / stage / "epochs.jsonl") == _epochs_without_time(
            reference / stage / "epochs.jsonl"
        )
    a, b = load_checkpoint(reference / "model.pt"), load_checkpoint(run / "model.pt")
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert not list(run.rglob("*.tmp"))


def test_second_process_on_the_same_run_is_refused(synthetic_cache, tmp_path: Path) -> None:
    cache, splits = synthetic_cache
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        # A live owner that started before its lock was written holds the lock.
        lock = {"pid": holder.pid, "host": os.uname().nodename, "started": psutil.Process(holder.pid).create_time()}
        (run / ".avzsl.lock").write_text(json.dumps(lock))
        assert cli_train.main(_train_args(cache, splits, run, "--epochs", "1")) == 2
        assert "in use by process" in (run / "train.log").read_text()
    finally:
        holder.kill()
        holder.wait()
    # The owner is dead now: its stale lock is recovered.
    assert cli_train.main(_train_args(cache, splits, run, "--epochs", "1")) == 0
    assert not (run / ".avzsl.lock").exists()


@pytest.mark.parametrize("corrupt", ["truncate", "garbage"])
def test_corrupt_checkpoint_is_reported(synthetic_cache, tmp_path: Path, corrupt: str) -> None:
    cache, splits = synthetic_cache
    run = tmp_path / "run"
    killed = _run_cli(_train_args(cache, splits, run), kill_at="stage1-epoch-2")
    assert killed.returncode == -signal.SIGKILL
    ckpt = run / "stage1" / "last.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2] if corrupt == "truncate" else b"not a checkpoint")
    assert cli_train.main(_train_args(cache, splits, run)) == 2
    assert "corrupt or truncated" in (run / "train.log").read_text()
