"""avzsl-report and avzsl-sweep on a real tiny run of the synthetic cache."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from avzsl.pipeline.cli import report as cli_report
from avzsl.pipeline.cli import sweep as cli_sweep
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.sweep.plan import format_rho, plan_sweep
from avzsl.pipeline.sweep.stats import mean_std

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TINY = ["--epochs", "2", "--batch-size", "32", "--device", "cpu"]


@pytest.fixture(scope="module")
def tiny_run(synthetic_cache, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache, splits = synthetic_cache
    run = tmp_path_factory.mktemp("report") / "run"
    argv = ["--cache", str(cache), "--splits", str(splits), "--out", str(run)]
    assert cli_train.main([*argv, "--epochs", "3", "--batch-size", "32", "--device", "cpu"]) == 0
    return run


def _assert_png(path: Path) -> None:
    assert path.is_file(), path
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == PNG_MAGIC, path


def test_report_writes_figures_and_the_run_metrics(tiny_run: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    code = cli_report.main(["--run", str(tiny_run), "--out", str(out), "--max-points", "60", "--tsne-iter", "250"])
    assert code == 0
    for name in ("tsne", "per_class_seen", "per_class_unseen", "stage1_validation", "training_losses"):
        _assert_png(out / f"{name}.png")
    assert not (out / "mask_proportion.png").exists()
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    md = (out / "report.md").read_text()
    row = "| this run | " + " | ".join(f"{metrics[k]:.2f}" for k in ("S", "U", "H", "ZSL")) + " |"
    assert row in md
    assert f"e* = {metrics['epoch']}" in md
    # Every image the report names exists next to it, in Markdown and HTML alike.
    html = (out / "report.html").read_text()
    for page, pattern in ((md, r"\]\(([^)]+\.png)\)"), (html, r'src="([^"]+\.png)"')):
        images = re.findall(pattern, page)
        assert len(images) == 5 and all((out / name).is_file() for name in images)
    assert "WARNING" not in md  # the synthetic cache does not claim random weights
    # 60 points over 4 unseen classes: 15 per class.
    assert "60 videos" in md
    assert str(out / "report.md") in capsys.readouterr().out


def test_report_default_folder_named_classes_and_errors(tiny_run: Path, tmp_path: Path) -> None:
    code = cli_report.main(["--run", str(tiny_run), "--classes", "CLASS013,class015", "--tsne-iter", "250"])
    assert code == 0
    md = (tiny_run / "report" / "report.md").read_text()
    assert "2 unseen classes (class013, class015" in md
    # A seen class is not an unseen test class; a folder without a run is refused with exit 2.
    assert cli_report.main(["--run", str(tiny_run), "--out", str(tmp_path / "x"), "--classes", "class000"]) == 2
    assert cli_report.main(["--run", str(tmp_path), "--out", str(tmp_path / "y")]) == 2


def test_report_warns_about_random_weights(tiny_run: Path, tmp_path: Path, monkeypatch) -> None:
    from avzsl.pipeline.report import build as report

    monkeypatch.setattr(report, "_random_weights", lambda run_dir, cache: True)
    result = report.build_report(tiny_run, tmp_path / "r", max_points=40, tsne_iter=250)
    assert result.warnings and "RANDOM" in result.warnings[0]
    assert "RANDOM encoder weights" in (tmp_path / "r" / "report.md").read_text()
    assert 'class="warn"' in (tmp_path / "r" / "report.html").read_text()


def test_plan_and_statistics() -> None:
    runs = plan_sweep(True, [0.0, 0.2], [0, 1])
    names = [r.name for r in runs]
    assert names[:2] == ["ablation-cls-seed0", "ablation-cls-seed1"]
    assert "ablation-cls+kd+mask-seed1" in names and "rho-0-seed0" in names and "rho-0.2-seed1" in names
    assert len(runs) == 10
    assert [r.name for r in plan_sweep(False, [], [3])] == ["default-seed3"]
    assert format_rho(0.1) == "0.1" and format_rho(0) == "0"
    stat = mean_std([1.0, 3.0])
    assert stat["mean"] == 2.0 and stat["std"] == pytest.approx(2**0.5, abs=1e-4)
    assert mean_std([5.0]) == {"mean": 5.0, "std": 0.0}
    with pytest.raises(ValueError):
        plan_sweep(False, [0.1, 0.1], [0])
    with pytest.raises(ValueError):
        plan_sweep(False, [1.5], [0])


def test_sweep_summary_rerun_skips_and_report_includes_it(
    synthetic_cache, tiny_run: Path, tmp_path: Path, capsys
) -> None:
    cache, splits = synthetic_cache
    sweep = tmp_path / "sweep"
    argv = ["--cache", str(cache), "--splits", str(splits), "--out", str(sweep)]
    argv += ["--ablation", "--rho", "0,0.2", "--seeds", "0,1", "--", *TINY]
    assert cli_sweep.main(argv) == 0
    printed = capsys.readouterr().out
    assert "ablation (Table 3)" in printed and "±" in printed
    summary = json.loads((sweep / "summary.json").read_text())
    assert len(summary["runs"]) == 10 and all(r["status"] == "trained" for r in summary["runs"])
    ablation = {e["key"]: e for e in summary["groups"]["ablation"]}
    assert set(ablation) == {"cls", "cls+kd", "cls+kd+mask"}
    rho = {e["key"]: e for e in summary["groups"]["rho"]}
    assert set(rho) == {"0", "0.2"}
    # Mean and std agree with the runs' own metrics.json.
    values = [json.loads((sweep / f"rho-0-seed{s}" / "metrics.json").read_text())["H"] for s in (0, 1)]
    assert rho["0"]["H"] == mean_std(values) and rho["0"]["n"] == 2
    config = json.loads((sweep / "rho-0.2-seed1" / "config.json").read_text())["config"]
    assert config["method_options"]["mask_ratio"] == 0.2
    assert json.loads((sweep / "ablation-cls-seed0" / "config.json").read_text())["config"]["seed"] == 0

    # A rerun trains nothing: every run is up to date and its model file untouched.
    stamps = {p: p.stat().st_mtime_ns for p in sweep.glob("*/model.pt")}
    assert len(stamps) == 10
    assert cli_sweep.main(argv) == 0
    assert "10 up to date, 0 trained" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in sweep.glob("*/model.pt")} == stamps
    assert all(r["status"] == "up to date" for r in json.loads((sweep / "summary.json").read_text())["runs"])
    assert "up to date" in (sweep / "rho-0-seed0" / "train.log").read_text()

    # The report with --sweep has the Table 3 layout and the Fig. 2 plot; the paper's numbers only with a benchmark.
    out = tmp_path / "report"
    argv1 = ["--run", str(tiny_run), "--out", str(out), "--sweep", str(sweep), "--tsne-iter", "250"]
    assert cli_report.main(argv1) == 0
    md = (out / "report.md").read_text()
    _assert_png(out / "mask_proportion.png")
    cell = f"{ablation['cls']['S']['mean']:.2f} ± {ablation['cls']['S']['std']:.2f}"
    assert "| L_CLS | " + cell in md and "+L_KD+L_M" in md
    assert "S paper" not in md
    out2 = tmp_path / "report-ucf"
    argv2 = ["--run", str(tiny_run), "--out", str(out2), "--sweep", str(sweep), "--benchmark", "ucf"]
    assert cli_report.main([*argv2, "--tsne-iter", "250"]) == 0
    md2 = (out2 / "report.md").read_text()
    assert "S paper" in md2 and "56.09" in md2 and "35.27" in md2


def test_sweep_seeds_only_and_refusals(synthetic_cache, tmp_path: Path, capsys) -> None:
    cache, splits = synthetic_cache
    sweep = tmp_path / "seeds"
    base = ["--cache", str(cache), "--splits", str(splits), "--out", str(sweep)]
    assert cli_sweep.main([*base, "--seeds", "0,1", "--", "--epochs", "1", "--batch-size", "32"]) == 0
    assert "default configuration" in capsys.readouterr().out
    summary = json.loads((sweep / "summary.json").read_text())
    assert [e["key"] for e in summary["groups"]["default"]] == ["default"]
    assert summary["groups"]["default"][0]["n"] == 2
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["default-seed0", "default-seed1"]
    # Options the sweep sets itself are refused after '--'.
    assert cli_sweep.main([*base, "--rho", "0.1", "--", "--mask-ratio", "0.3"]) == 2
    assert cli_sweep.main([*base, "--", "--seed", "3"]) == 2
