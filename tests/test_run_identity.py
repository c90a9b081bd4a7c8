"""A run stays bound to what it was trained on (issue 20, section 2).

Real runs trained by ``avzsl-train`` on a real (synthetic-writer) cache; every fault is made on their files the way a
user would: ``config.json`` edited, a ``model.pt`` of a DeViSE run copied in, the cache written again in place with
other features, the split folder rewritten by ``avzsl-splits --overwrite --seed 1``, the same command run with the
split folder spelled absolute instead of relative. Before, evaluate reported other numbers (and rewrote
``metrics.json``) and train said "up to date"; now evaluate, predict and train refuse naming what changed, and a
path spelled another way is the same run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from avzsl.pipeline.cli import evaluate as cli_evaluate
from avzsl.pipeline.cli import predict as cli_predict
from avzsl.pipeline.cli import splits as cli_splits
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.predict.predictor import Predictor
from avzsl.pipeline.run.layout import IDENTITY_JSON, RunConfigError
from avzsl.pipeline.synth.features import SyntheticSpec, make_synthetic_cache

SPEC = SyntheticSpec(num_seen=4, num_val_unseen=2, num_test_unseen=2, videos_per_class=8)


def _train(cache: Path, splits: Path | str, out: Path, *extra: str) -> int:
    return cli_train.main(["--cache", str(cache), "--splits", str(splits), "--out", str(out), "--epochs", "1",
                           "--batch-size", "16", "--device", "cpu", *extra])


def _evaluate(run: Path) -> int:
    return cli_evaluate.main(["--run", str(run), "--device", "cpu"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A cache, its split folder, a finished coordinate_generalize run and a finished DeViSE run on them."""
    root = tmp_path_factory.mktemp("identity")
    make_synthetic_cache(root / "cache", root / "splits", SPEC)
    assert _train(root / "cache", root / "splits", root / "run") == 0
    assert _train(root / "cache", root / "splits", root / "devise", "--method", "devise") == 0
    return {"cache": root / "cache", "splits": root / "splits", "run": root / "run", "devise": root / "devise"}


@pytest.fixture()
def run(trained: dict[str, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained["run"], copy)
    return copy


def _edit_config(run: Path, **changes: object) -> None:
    record = json.loads((run / "config.json").read_text())
    record["config"].update(changes)
    (run / "config.json").write_text(json.dumps(record, indent=2))


def test_a_finished_run_evaluates_and_records_its_identity(run: Path, trained: dict[str, Path]) -> None:
    identity = json.loads((run / IDENTITY_JSON).read_text())
    assert identity["method"] == "coordinate_generalize" and identity["splits"] == str(trained["splits"].resolve())
    assert len(identity["cache_digest"]) == 64 and len(identity["splits_digest"]) == 64
    assert _evaluate(run) == 0
    # The scoring batch size changes no number: editing it is allowed.
    _edit_config(run, eval_batch_size=7)
    assert _evaluate(run) == 0


def test_config_pointing_at_another_split_folder_is_refused(run: Path, trained, tmp_path: Path, caplog) -> None:
    other = tmp_path / "other"
    assert cli_splits.main(["--cache", str(trained["cache"]), "--out", str(other), "--unseen-ratio", "0.25",
                            "--seed", "1"]) == 0
    _edit_config(run, splits=str(other))
    before = (run / "metrics.json").read_bytes()
    assert _evaluate(run) == 2
    assert f"the split definition is {other}, the run was trained on {trained['splits'].resolve()}" in caplog.text
    assert (run / "metrics.json").read_bytes() == before
    # A copy of the very folder the run was trained on says the same: accepted.
    shutil.copytree(trained["splits"], tmp_path / "copy")
    _edit_config(run, splits=str(tmp_path / "copy"))
    assert _evaluate(run) == 0


def test_edited_calibration_is_refused_naming_the_setting(run: Path, caplog) -> None:
    _edit_config(run, calibration="reference")
    before = (run / "metrics.json").read_bytes()
    assert _evaluate(run) == 2
    changed = "changed since the run was trained (calibration: 'exact' -> 'reference')"
    assert f"{run / 'config.json'}: {changed}" in caplog.text
    assert (run / "metrics.json").read_bytes() == before
    with pytest.raises(RunConfigError, match="calibration: 'exact' -> 'reference'"):
        Predictor(run, encode_videos=False)


def test_invalid_value_in_config_names_the_file(run: Path, caplog) -> None:
    _edit_config(run, batch_size=-5)
    assert _evaluate(run) == 2
    assert f"{run / 'config.json'}: invalid run configuration" in caplog.text
    assert "batch_size" in caplog.text


def test_model_of_another_method_is_refused(run: Path, trained: dict[str, Path], caplog) -> None:
    shutil.copy(trained["devise"] / "model.pt", run / "model.pt")
    before = (run / "metrics.json").read_bytes()
    assert _evaluate(run) == 2
    foreign = "not this run's model (method 'devise', the run's is 'coordinate_generalize'"
    assert f"{run / 'model.pt'}: {foreign}" in caplog.text
    assert (run / "metrics.json").read_bytes() == before
    caplog.clear()
    assert cli_predict.main(["--run", str(run), "--random-weights", "--classes", "class000,class006",
                             str(trained["cache"])]) == 2
    assert "not this run's model (method 'devise'" in caplog.text
    caplog.clear()
    # A rerun of train is not "up to date" with a foreign model.
    assert _train(trained["cache"], trained["splits"], run) == 2
    assert "not this run's model" in (run / "train.log").read_text()


def test_model_of_another_run_of_the_same_method_is_refused(run: Path, trained, tmp_path: Path, caplog) -> None:
    other = tmp_path / "other"
    assert _train(trained["cache"], trained["splits"], other, "--seed", "7") == 0
    shutil.copy(other / "model.pt", run / "model.pt")
    assert _evaluate(run) == 2
    assert "not this run's model (configuration hash" in caplog.text


def test_older_run_without_identity_still_evaluates_with_a_warning(run: Path, caplog) -> None:
    (run / IDENTITY_JSON).unlink()
    assert _evaluate(run) == 0
    assert "without identity.json" in caplog.text and "cannot be checked" in caplog.text


def test_edited_identity_record_is_refused(run: Path, caplog) -> None:
    record = json.loads((run / IDENTITY_JSON).read_text())
    record["splits_digest"] = "0" * 64
    (run / IDENTITY_JSON).write_text(json.dumps(record))
    assert _evaluate(run) == 2
    assert f"{run / IDENTITY_JSON}: checksum mismatch" in caplog.text


def _fresh_run(tmp_path: Path) -> tuple[Path, Path, Path]:
    cache, splits, run = tmp_path / "cache", tmp_path / "splits", tmp_path / "run"
    make_synthetic_cache(cache, splits, SPEC)
    assert _train(cache, splits, run) == 0
    return cache, splits, run


def _last_log_line(run: Path) -> str:
    return (run / "train.log").read_text().splitlines()[-1]


UP_TO_DATE = "is up to date: the run finished earlier with this configuration and these inputs"


def test_split_folder_rewritten_after_training_is_refused_by_evaluate_and_train(tmp_path: Path, caplog) -> None:
    cache, splits, run = _fresh_run(tmp_path)
    before = (run / "metrics.json").read_bytes()
    saved = tmp_path / "saved"
    shutil.copytree(splits, saved)
    # Another draw of the classes and test videos, written over the run's split folder.
    assert cli_splits.main(["--cache", str(cache), "--out", str(splits), "--unseen-ratio", "0.25", "--seed", "1",
                            "--overwrite"]) == 0
    assert _evaluate(run) == 2
    assert f"the split folder {splits.resolve()} changed since the run was trained" in caplog.text
    assert _train(cache, splits, run) == 2
    assert "holds a run of this configuration trained on other inputs: the split folder" in _last_log_line(run)
    assert (run / "metrics.json").read_bytes() == before
    # The folder as it was: the run is itself again.
    shutil.rmtree(splits)
    shutil.copytree(saved, splits)
    assert _evaluate(run) == 0
    assert _train(cache, splits, run) == 0 and _last_log_line(run).endswith(UP_TO_DATE)


def test_cache_written_again_in_place_is_refused_by_evaluate_and_train(tmp_path: Path, caplog) -> None:
    cache, splits, run = _fresh_run(tmp_path)
    # The same video ids and classes with other features (another seed: as if extracted with other weights).
    make_synthetic_cache(cache, tmp_path / "splits-1", SyntheticSpec(**{**SPEC.__dict__, "seed": 1}))
    assert _evaluate(run) == 2
    assert f"the cache {cache.resolve()} is not the one the run was trained on" in caplog.text
    assert _train(cache, splits, run) == 2
    assert "trained on other inputs: the cache" in _last_log_line(run)
    # --overwrite retrains on the current cache; then every identity matches again.
    assert _train(cache, splits, run, "--overwrite") == 0
    assert _evaluate(run) == 0
    assert _train(cache, splits, run) == 0 and _last_log_line(run).endswith(UP_TO_DATE)


def test_split_folder_spelled_absolute_resumes_the_relative_run(tmp_path: Path, monkeypatch) -> None:
    cache, splits = tmp_path / "cache", tmp_path / "splits"
    make_synthetic_cache(cache, splits, SPEC)
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    assert _train(cache, "splits", run) == 0
    # Interrupted after stage 2's last checkpoint, before model.pt: the rerun resumes, whatever the spelling.
    for name in ("model.pt", "metrics.json", "status.json"):
        (run / name).unlink()
    assert _train(cache, splits.resolve(), run) == 0
    log = (run / "train.log").read_text()
    assert "resuming the run" in log and "different configuration" not in log and "--overwrite" not in log
    assert _train(cache, f"./splits/../{splits.name}", run) == 0
    assert _last_log_line(run).endswith(UP_TO_DATE)
