"""The closed-form baselines (ridge, ESZSL): the solves against the textbook formulas, a recovered linear map, and
the two-stage protocol choosing the regulariser on stage-1 validation H and carrying it into stage 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from avzsl.model.closed_form import RidgeFactors
from avzsl.model.registry import FeatureBatch, FeatureDims, build_method, get_method, method_options, options_to_dict
from avzsl.pipeline.cli import evaluate as cli_evaluate
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.run.checkpoint import load_checkpoint
from avzsl.pipeline.sweep.methods import parse_methods
from tests.methods_toy import accuracy, build, one_thread, toy_problem  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL_GRIDS = {"ridge": {}, "eszsl": {"gammas": [0.01, 1.0, 100.0], "lambdas": [0.01, 1.0, 100.0]}}
"""Options of the protocol runs: ridge with its default 7-value grid, ESZSL with a 3 x 3 grid (short test)."""


def _direct_ridge(x: torch.Tensor, t: torch.Tensor, reg: float) -> torch.Tensor:
    return torch.linalg.solve(x.T @ x + reg * torch.eye(x.shape[1], dtype=x.dtype), x.T @ t)


@pytest.mark.parametrize("n", [40, 9], ids=["primal", "dual"])
def test_ridge_factors_match_a_direct_solve_and_residual(n: int, monkeypatch) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 12, generator=g, dtype=torch.float64)
    labels = torch.randint(4, (n,), generator=g)
    class_targets = torch.randn(4, 5, generator=g, dtype=torch.float64)
    t = class_targets[labels]
    # Small row chunks: the primal case accumulates X^T X and the per-class sums over several of them.
    factors = RidgeFactors(x, labels, class_targets)
    monkeypatch.setattr(RidgeFactors, "CHUNK", 7)
    chunked = RidgeFactors(x, labels, class_targets)
    assert factors.dual == chunked.dual == (n < 12)
    assert factors.scale == pytest.approx(float((x ** 2).sum()) / 12)
    assert factors.target_sq == pytest.approx(float((t ** 2).sum()))
    for reg in (1e-3, 0.7, 30.0):
        coef = factors.coefficients(reg)
        w = factors.weights(coef)
        torch.testing.assert_close(w, _direct_ridge(x, t, reg))
        torch.testing.assert_close(chunked.weights(chunked.coefficients(reg)), w)
        assert factors.squared_error(coef, factors.target_sq) == pytest.approx(float(((x @ w - t) ** 2).sum()))
        # With a right factor R (ESZSL: R = S^T) and targets Y with Y R^T = T.
        r = torch.randn(5, 7, generator=g, dtype=torch.float64)
        y = t @ torch.linalg.pinv(r.T)  # (n, 7): Y R^T = T exactly, R^T (7 x 5) has full column rank
        torch.testing.assert_close(y @ r.T, t)
        direct = float(((x @ w @ r - y) ** 2).sum())
        assert factors.squared_error(coef, float((y ** 2).sum()), right=r @ r.T) == pytest.approx(direct)


def test_eszsl_is_the_papers_closed_form() -> None:
    batch, labels, emb = toy_problem()
    method = build("eszsl", gammas=[0.5], lambdas=[2.0], standardize=False)
    method.prepare(batch, labels, emb)
    out = method.fit(0)
    # The paper's notation: X (D x N), Y (N x Z) in {-1, 1}, S (A x Z).
    x = torch.cat((batch.audio, batch.visual), dim=1).double().T
    y = -torch.ones(len(labels), emb.shape[0], dtype=torch.float64)
    y[torch.arange(len(labels)), labels] = 1.0
    s = F.normalize(emb.double(), dim=1).T
    gamma = 0.5 * float((x ** 2).sum()) / x.shape[0]
    lam = 2.0 * float((s ** 2).sum()) / s.shape[0]
    assert (out["reg_gamma_abs"], out["reg_lambda_abs"]) == (pytest.approx(gamma), pytest.approx(lam))
    v = torch.linalg.solve(x @ x.T + gamma * torch.eye(x.shape[0], dtype=x.dtype), x @ y @ s.T) @ torch.linalg.inv(
        s @ s.T + lam * torch.eye(s.shape[0], dtype=x.dtype))
    torch.testing.assert_close(method.weight, v.float(), rtol=1e-4, atol=1e-6)
    assert out["loss"] == pytest.approx(float(((x.T @ v @ s - y) ** 2).sum()) / len(labels), rel=1e-6)
    method.eval()
    torch.testing.assert_close(method.scores(batch, emb), (x.T @ v @ s).float(), rtol=1e-4, atol=1e-4)
    assert method.setting.item() == 0 and method.regulariser.tolist() == pytest.approx([gamma, lam])


def _linear_world(g: torch.Generator, w_star: torch.Tensor, emb: torch.Tensor, n: int
                  ) -> tuple[FeatureBatch, torch.Tensor]:
    """Videos whose features ``x`` satisfy ``x W* = e_y + small noise``; ``(N, 6)`` audio and ``(N, 10)`` visual."""
    labels = torch.randint(emb.shape[0], (n,), generator=g)
    pinv = torch.linalg.pinv(w_star)  # (A, D), pinv @ W* = I
    null = torch.eye(w_star.shape[0]) - w_star @ pinv  # projector onto the complement of W*'s column space
    x = emb[labels] @ pinv + torch.randn(n, w_star.shape[0], generator=g) @ null
    x = x + 1e-3 * torch.randn(x.shape, generator=g)
    return FeatureBatch(x[:, :6].contiguous(), x[:, 6:].contiguous()), labels


def test_ridge_recovers_a_known_linear_map() -> None:
    g = torch.Generator().manual_seed(3)
    dims = FeatureDims(audio_dim=6, visual_dim=10, text_dim=5)
    emb = F.normalize(torch.randn(9, 5, generator=g), dim=1)  # more classes than embedding dims: W* identifiable
    w_star = torch.randn(16, 5, generator=g)
    train, labels = _linear_world(g, w_star, emb, 300)
    torch.manual_seed(0)
    method = build_method("ridge", dims, {"lambdas": [1e-7], "standardize": False})
    method.prepare(train, labels, emb)
    method.fit(0)
    torch.testing.assert_close(method.weight, w_star, rtol=0, atol=2e-2 * float(w_star.abs().max()))
    test, test_labels = _linear_world(g, w_star, emb, 200)
    method.eval()
    assert accuracy(method, test, test_labels, emb) == 1.0
    # Standardized inputs (the default) give the same predictions up to the standardization's offset: still exact.
    std = build_method("ridge", dims, {"lambdas": [1e-7]})
    std.prepare(train, labels, emb)
    std.fit(0)
    std.eval()
    assert accuracy(std, test, test_labels, emb) > 0.95


@pytest.mark.parametrize("name", ["ridge", "eszsl"])
def test_closed_form_methods_register_and_refuse_gradient_training(name: str) -> None:
    entry = get_method(name)
    assert entry.trainable and not entry.needs_sequences
    assert name in {s.method for s in parse_methods("all")}
    opts = method_options(name, {k: list(v) for k, v in SMALL_GRIDS[name].items()})
    assert method_options(name, json.loads(json.dumps(options_to_dict(opts)))) == opts
    with pytest.raises(ValueError, match="lambdas"):
        method_options(name, {"lambdas": []})
    with pytest.raises(ValueError, match="lambdas"):
        method_options(name, {"lambdas": [1.0, 0.0]})
    method = build(name)
    assert method.fit_settings() == (7 if name == "ridge" else 49)
    assert list(method.parameters()) == []
    with pytest.raises(RuntimeError, match="prepare"):
        method.fit(0)
    batch, labels, emb = toy_problem()
    with pytest.raises(RuntimeError, match="closed form"):
        method.training_loss(batch, labels, emb)
    method.prepare(batch, labels, emb)
    method.fit(method.fit_settings() - 1)
    method.eval()
    assert accuracy(method, batch, labels, emb) > 0.9  # 5 classes: chance is 20 %


# ------------------------------------------------------------------------------------------------------------------
# Through the protocol: avzsl-train, the regulariser chosen on validation H, stage 2, avzsl-evaluate


def _train(synthetic_cache: tuple[Path, Path], run: Path, name: str) -> dict:
    cache, splits = synthetic_cache
    argv = ["--cache", str(cache), "--splits", str(splits), "--out", str(run), "--method", name, "--epochs", "2",
            "--device", "cpu"]
    for key, value in SMALL_GRIDS[name].items():
        argv += ["--method-option", f"{key}={json.dumps(value)}"]
    assert cli_train.main(argv) == 0
    return json.loads((run / "metrics.json").read_text())


def _epochs(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("name", ["ridge", "eszsl"])
def test_protocol_chooses_the_regulariser_on_validation_and_carries_it(synthetic_cache, tmp_path: Path, name: str,
                                                                       capsys) -> None:
    run = tmp_path / name
    metrics = _train(synthetic_cache, run, name)
    # Chance on the 12 test candidates is about 8 % per side; the synthetic features are a linear-invertible map
    # of the class embeddings.
    assert metrics["method"] == name and metrics["S"] > 60 and metrics["U"] > 60 and metrics["H"] > 60
    method = build(name, **SMALL_GRIDS[name])
    stage1 = _epochs(run / "stage1" / "epochs.jsonl")
    # One "epoch" per grid setting (--epochs 2 does not apply), each a validated fit.
    assert [r["epoch"] for r in stage1] == list(range(1, method.fit_settings() + 1))
    keys = ("reg_lambda",) if name == "ridge" else ("reg_gamma", "reg_lambda")
    grid = [tuple(r[k] for k in keys) for r in stage1]
    assert len(set(grid)) == len(grid)
    best = json.loads((run / "stage1" / "result.json").read_text())
    val_h = [r["val"]["H"] for r in stage1]
    assert best["epoch"] == val_h.index(max(val_h)) + 1 and best["H"] == max(val_h)
    chosen = stage1[best["epoch"] - 1]
    assert best["gamma"] == chosen["gamma"]
    # Stage 2 fits only the chosen setting, on its own (larger) training part.
    (stage2,) = _epochs(run / "stage2" / "epochs.jsonl")
    assert stage2["epoch"] == best["epoch"] and tuple(stage2[k] for k in keys) == tuple(chosen[k] for k in keys)
    # Absolute values grow with the training part (more videos, more seen classes); the relative ones are carried.
    assert all(stage2[f"{k}_abs"] > chosen[f"{k}_abs"] for k in keys)
    state = load_checkpoint(run / "model.pt")
    assert state["epoch"] == best["epoch"] and state["state_dict"]["setting"].item() == best["epoch"] - 1
    assert state["state_dict"]["regulariser"].tolist() == pytest.approx([stage2[f"{k}_abs"] for k in keys])
    assert state["gamma"] == best["gamma"]
    # avzsl-evaluate reloads the saved run and reproduces the test numbers.
    capsys.readouterr()
    assert cli_evaluate.main(["--run", str(run), "--device", "cpu", "--json"]) == 0
    again = json.loads((run / "metrics.json").read_text())
    assert {k: again[k] for k in ("S", "U", "H", "ZSL", "gamma", "epoch")} == {
        k: metrics[k] for k in ("S", "U", "H", "ZSL", "gamma", "epoch")}
    assert "fitted in closed form" in (run / "train.log").read_text()


def test_interrupted_closed_form_run_resumes_to_the_same_numbers(synthetic_cache, tmp_path: Path,
                                                                 monkeypatch) -> None:
    from avzsl.pipeline.train import trainer

    class Killed(BaseException):
        """Stands in for SIGKILL after a checkpoint: nothing after the crash point runs."""

    def crash(point: str) -> None:
        if point == "stage1-epoch-3":
            raise Killed(point)

    reference = _train(synthetic_cache, tmp_path / "reference", "ridge")
    monkeypatch.setattr(trainer, "crash_point", crash)
    with pytest.raises(Killed):
        _train(synthetic_cache, tmp_path / "run", "ridge")
    monkeypatch.undo()
    resumed = _train(synthetic_cache, tmp_path / "run", "ridge")
    assert [r["epoch"] for r in _epochs(tmp_path / "run" / "stage1" / "epochs.jsonl")] == list(range(1, 8))
    assert {k: resumed[k] for k in ("S", "U", "H", "ZSL", "gamma", "epoch")} == {
        k: reference[k] for k in ("S", "U", "H", "ZSL", "gamma", "epoch")}


def test_methods_sweep_runs_ridge_and_seeds_do_not_change_a_closed_form_fit(synthetic_cache, tmp_path: Path) -> None:
    from avzsl.pipeline.cli import sweep as cli_sweep

    cache, splits = synthetic_cache
    out = tmp_path / "sweep"
    argv = ["--cache", str(cache), "--splits", str(splits), "--out", str(out), "--methods", "ridge", "--seeds", "0,1",
            "--", "--device", "cpu"]
    assert cli_sweep.main(argv) == 0
    (row,) = json.loads((out / "methods.json").read_text())["rows"]
    assert row["method"] == "ridge" and row["status"] == "ok" and row["n"] == 2
    # No initialisation and no batches: both seeds fit the same map.
    assert row["H"]["std"] == 0.0 and row["H"]["mean"] > 60
