"""avzsl-sweep --methods (the Table 2 comparison) on the tiny synthetic cache: table, skips, rerun, resume, report."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
import pytest

from avzsl.model.coordinate_generalize import DEFAULT_PRESET, PRESETS
from avzsl.pipeline.cache import cache_has_sequences
from avzsl.pipeline.cli import report as cli_report
from avzsl.pipeline.cli import sweep as cli_sweep
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.sweep.methods import MethodSpec, parse_methods, skip_reason

TINY = ["--", "--epochs", "1", "--batch-size", "32", "--device", "cpu"]
METHODS = "coordinate_generalize:paper,ce_probe,zero_shot"


def _base(synthetic_cache: tuple[Path, Path], out: Path) -> list[str]:
    cache, splits = synthetic_cache
    return ["--cache", str(cache), "--splits", str(splits), "--out", str(out)]


@pytest.fixture(scope="module")
def methods_sweep(synthetic_cache, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two methods that train and one that the cache cannot feed, over seeds 0 and 1, one epoch."""
    out = tmp_path_factory.mktemp("methods") / "sweep"
    assert cli_sweep.main([*_base(synthetic_cache, out), "--methods", METHODS, "--seeds", "0,1", *TINY]) == 0
    return out


def test_methods_table_has_mean_std_over_seeds_and_the_skip_reason(methods_sweep: Path) -> None:
    runs = sorted(p.name for p in methods_sweep.iterdir() if p.is_dir())
    assert runs == ["method-ce_probe-seed0", "method-ce_probe-seed1", "method-coordinate_generalize-paper-seed0",
                    "method-coordinate_generalize-paper-seed1"]
    config = json.loads((methods_sweep / "method-coordinate_generalize-paper-seed1" / "config.json").read_text())
    assert config["config"]["seed"] == 1 and config["config"]["method"] == "coordinate_generalize"
    table = json.loads((methods_sweep / "methods.json").read_text())
    rows = {r["method"]: r for r in table["rows"]}
    assert list(rows) == ["coordinate_generalize:paper", "ce_probe", "zero_shot"]
    assert rows["zero_shot"]["status"] == "skipped" and "CLIP/CLAP" in rows["zero_shot"]["reason"]
    md = (methods_sweep / "methods.md").read_text()
    assert "| zero_shot | - | - | - | - | 0 |" in md and "skipped: needs CLIP/CLAP" in md
    for label, key in (("coordinate_generalize:paper", "coordinate_generalize-paper"), ("ce_probe", "ce_probe")):
        row = rows[label]
        assert row["status"] == "ok" and row["n"] == 2 and row["seeds"] == [0, 1]
        per_seed = [json.loads((methods_sweep / f"method-{key}-seed{s}" / "metrics.json").read_text())
                    for s in (0, 1)]
        for metric in ("S", "U", "H", "ZSL"):
            values = [m[metric] for m in per_seed]
            assert row[metric]["mean"] == pytest.approx(statistics.mean(values), abs=1e-4)
            assert row[metric]["std"] == pytest.approx(statistics.stdev(values), abs=1e-4)
        cells = f"{row['H']['mean']:.2f} ± {row['H']['std']:.2f}"
        assert f"| {label} | " in md and cells in md
        assert row["gamma"]["mean"] == pytest.approx(statistics.mean(m["gamma"] for m in per_seed), abs=1e-4)
        assert row["gamma_at_edge"] == sum(bool(m["calibration"].get("at_edge")) for m in per_seed)
        # Wall time: the per-epoch seconds of both stages, as recorded in the runs.
        seconds = []
        for s in (0, 1):
            run = methods_sweep / f"method-{key}-seed{s}"
            seconds.append(sum(json.loads(line)["seconds"] for stage in ("stage1", "stage2")
                               for line in (run / stage / "epochs.jsonl").read_text().splitlines()))
        assert row["train_seconds"]["mean"] == pytest.approx(statistics.mean(seconds), abs=1e-3)
        assert row["train_seconds"]["mean"] > 0
    summary = json.loads((methods_sweep / "summary.json").read_text())
    assert summary["skipped_methods"] == {"zero_shot": rows["zero_shot"]["reason"]}
    assert "skipped" in (methods_sweep / "sweep.log").read_text()


def test_methods_rerun_skips_finished_runs(methods_sweep: Path, synthetic_cache, capsys) -> None:
    stamps = {p: p.stat().st_mtime_ns for p in methods_sweep.glob("*/model.pt")}
    assert len(stamps) == 4
    assert cli_sweep.main([*_base(synthetic_cache, methods_sweep), "--methods", METHODS, "--seeds", "0,1",
                           *TINY]) == 0
    assert {p: p.stat().st_mtime_ns for p in methods_sweep.glob("*/model.pt")} == stamps
    out = capsys.readouterr().out
    assert "4 run(s): 4 up to date, 0 trained, 0 failed, 1 method(s) skipped" in out
    assert all(r["status"] == "up to date" for r in json.loads((methods_sweep / "summary.json").read_text())["runs"])


def test_report_shows_the_methods_table(methods_sweep: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    assert cli_report.main(["--sweep", str(methods_sweep), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    table = json.loads((methods_sweep / "methods.json").read_text())
    ce = next(r for r in table["rows"] if r["method"] == "ce_probe")
    assert f"| ce_probe | {ce['S']['mean']:.2f} ± {ce['S']['std']:.2f} |" in md
    assert "skipped: needs CLIP/CLAP" in md and "Table 2" in md
    assert "<td>coordinate_generalize:paper</td>" in (out / "report.html").read_text()
    assert "| ce_probe |" in capsys.readouterr().out
    # Neither --run nor --sweep: a one-line user error.
    assert cli_report.main(["--out", str(tmp_path / "x")]) == 2


def test_interrupted_method_run_resumes(synthetic_cache, tmp_path: Path, monkeypatch) -> None:
    """A run killed after its first stage-1 epoch is resumed from its checkpoint and ends with the same result as an
    uninterrupted run."""
    from avzsl.pipeline.train import trainer as train

    class Killed(BaseException):
        """Stands in for SIGKILL: nothing after the crash point runs, nothing catches it."""

    def crash(name: str) -> None:
        if name == "stage1-epoch-1":
            raise Killed(name)

    argv = ["--methods", "ce_probe", "--seeds", "3", "--", "--epochs", "2", "--batch-size", "32", "--device", "cpu"]
    reference = tmp_path / "reference"
    assert cli_sweep.main([*_base(synthetic_cache, reference), *argv]) == 0
    sweep = tmp_path / "sweep"
    monkeypatch.setattr(train, "crash_point", crash)
    with pytest.raises(Killed):
        cli_sweep.main([*_base(synthetic_cache, sweep), *argv])
    run = sweep / "method-ce_probe-seed3"
    assert (run / "stage1" / "last.pt").is_file() and not (run / "stage1" / "result.json").exists()
    assert not (run / "metrics.json").exists()
    monkeypatch.undo()
    assert cli_sweep.main([*_base(synthetic_cache, sweep), *argv]) == 0
    assert "resuming the run" in (run / "train.log").read_text()
    epochs = [json.loads(line)["epoch"] for line in (run / "stage1" / "epochs.jsonl").read_text().splitlines()]
    assert epochs == [1, 2]
    got = json.loads((run / "metrics.json").read_text())
    want = json.loads((reference / "method-ce_probe-seed3" / "metrics.json").read_text())
    assert {k: got[k] for k in ("S", "U", "H", "ZSL", "gamma")} == {k: want[k] for k in ("S", "U", "H", "ZSL",
                                                                                            "gamma")}


def test_dry_run_lines_show_seed_and_method_and_all_lists_skips(synthetic_cache, tmp_path: Path, capsys) -> None:
    out = tmp_path / "dry"
    assert cli_sweep.main([*_base(synthetic_cache, out), "--methods", "all", "--seeds", "0,1", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    planned = [line for line in lines if ": to run: " in line]
    trained = [s.method for s in parse_methods("all") if s.method not in ("tcaf", "zero_shot", "conse")]
    assert len(planned) == 2 * len(trained)
    assert len(set(planned)) == len(planned)  # seeds no longer read the same
    for line in planned:
        name = line.split(":", 1)[0]
        seed = name.rsplit("seed", 1)[1]
        assert f"--seed {seed}" in line and f"--out {out / name}" in line and "--method " in line
    assert any("--method coordinate_generalize --preset paper" in line for line in planned)
    assert any(line.startswith("method tcaf: skipped: needs per-window sequences") for line in lines)
    assert any(line.startswith("method zero_shot: skipped: needs CLIP/CLAP") for line in lines)
    assert any(line.startswith("method conse: skipped: needs features of an encoder set with a named classifier")
               for line in lines)
    assert not [p for p in out.iterdir() if p.is_dir()]
    # The other sweeps' dry runs show the seed too.
    assert cli_sweep.main([*_base(synthetic_cache, out), "--rho", "0.1", "--seeds", "4,5", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "rho-0.1-seed4: to run:" in text and "--seed 4 --loss cls+kd+mask --mask-ratio 0.1" in text
    assert "--seed 5" in text


def test_methods_refusals(synthetic_cache, tmp_path: Path) -> None:
    base = _base(synthetic_cache, tmp_path / "r")
    assert cli_sweep.main([*base, "--methods", "avca", "--ablation", "--dry-run"]) == 2
    assert cli_sweep.main([*base, "--methods", "avca", "--", "--method", "cjme"]) == 2
    assert cli_sweep.main([*base, "--methods", "avca", "--", "--preset", "paper"]) == 2
    assert cli_sweep.main([*base, "--methods", "no_such_method", "--dry-run"]) == 2
    assert cli_sweep.main([*base, "--methods", "avca:paper", "--dry-run"]) == 2
    with pytest.raises(ValueError, match="listed twice"):
        parse_methods("coordinate_generalize,coordinate_generalize:recommended")


def test_train_cli_spells_the_model_presets() -> None:
    """avzsl-train names the presets and their default without importing the model (--help stays cheap); both must
    agree with ``PRESETS`` and ``DEFAULT_PRESET``, which the sweep and the training code use."""
    action = next(a for a in cli_train.build_parser()._actions if a.dest == "preset")
    assert set(action.choices) == set(PRESETS) and f"(default: {DEFAULT_PRESET})" in action.help
    assert parse_methods(f"coordinate_generalize:{DEFAULT_PRESET}") == [MethodSpec("coordinate_generalize")]


def test_sequence_methods_are_skipped_only_on_caches_without_sequences(synthetic_cache, tmp_path: Path) -> None:
    from avzsl.pipeline.cache import SHARD_DIR, VideoFeatures, write_shard

    cache, _ = synthetic_cache
    assert not cache_has_sequences(cache)
    assert "the cache has none" in skip_reason(MethodSpec("tcaf"), cache)
    windowed = tmp_path / "windowed"
    rng = np.random.default_rng(0)
    videos = [VideoFeatures(f"v{i}", "a", rng.random(4, np.float32), rng.random(4, np.float32),
                            rng.random((3, 4), np.float32), rng.random((3, 4), np.float32),
                            np.zeros((3, 2), np.float32)) for i in range(2)]
    write_shard(windowed / SHARD_DIR / "shard-00000.h5", videos, {"shard_index": 0})
    assert cache_has_sequences(windowed)
    assert skip_reason(MethodSpec("tcaf"), windowed) is None
    assert skip_reason(MethodSpec("avca"), cache) is None


def test_methods_sweep_trains_tcaf_on_a_cache_with_sequences(windowed_cache, tmp_path: Path, capsys) -> None:
    out = tmp_path / "sweep"
    base = _base(windowed_cache, out)
    # --methods all plans tcaf like any other method on this cache.
    assert cli_sweep.main([*base, "--methods", "all", "--seeds", "0", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("method-tcaf-seed0: to run: ") and "--method tcaf" in line for line in lines)
    assert not any(line.startswith("method tcaf: skipped") for line in lines)
    assert cli_sweep.main([*base, "--methods", "tcaf,ce_probe", "--seeds", "0", *TINY]) == 0
    rows = {r["method"]: r for r in json.loads((out / "methods.json").read_text())["rows"]}
    assert list(rows) == ["tcaf", "ce_probe"]
    tcaf = rows["tcaf"]
    assert tcaf["status"] == "ok" and tcaf["n"] == 1 and tcaf["seeds"] == [0]
    metrics = json.loads((out / "method-tcaf-seed0" / "metrics.json").read_text())
    assert metrics["method"] == "tcaf"
    for key in ("S", "U", "H", "ZSL"):
        assert math.isfinite(tcaf[key]["mean"]) and tcaf[key]["mean"] == pytest.approx(metrics[key], abs=1e-4)
    assert "| tcaf | " in (out / "methods.md").read_text()
    assert json.loads((out / "summary.json").read_text()).get("skipped_methods", {}) == {}
