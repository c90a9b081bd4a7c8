"""--seen-calibration: which shift a candidate list gets, what the score is called, and the run's benchmark list.

The rule was chosen by measurement (bench/predict_heldout.py, docs/predict.md): on new media the run's gamma lowered
top-1 for every candidate list, so ``auto`` applies no shift; ``full`` applies gamma and warns off the benchmark list.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest

from avzsl.pipeline.data.splits import write_protocol_splits
from avzsl.pipeline.predict.calibration import benchmark_classes, plan_calibration

BENCHMARK = ["dog", "cow", "violin", "goat"]  # dog, cow seen (stage-2 training); violin, goat unseen at test
SEEN = {"dog", "cow"}


def _plan(mode: str, names: list[str], benchmark: list[str] | None = BENCHMARK, space: str = "log p"):
    return plan_calibration(mode, names, [n in SEEN for n in names], 7.5, space, benchmark)


def test_auto_applies_no_shift_to_the_benchmark_list_or_any_other(caplog) -> None:
    with caplog.at_level(logging.INFO):
        for names in (BENCHMARK, ["goat", "dog", "cow", "violin"], ["dog", "cow", "pig"], ["cow", "zebra"]):
            plan = _plan("auto", names)
            plan.log()
            assert plan.shift == 0.0 and not plan.applied
            assert plan.score_is().startswith("log p (no calibration shift: --seen-calibration auto")
    assert _plan("auto", ["goat", "dog", "cow", "violin"]).benchmark_list is True  # any order, any case
    assert _plan("auto", ["DOG", "cow", "violin", "goat"]).benchmark_list is True
    assert _plan("auto", ["dog", "cow", "pig"]).benchmark_list is False
    assert _plan("auto", ["dog", "pig"], benchmark=None).benchmark_list is None
    assert "not applied" in caplog.text and "WARNING" not in caplog.text


def test_full_applies_gamma_and_warns_off_the_benchmark_list(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        plan = _plan("full", BENCHMARK)
        plan.log()
    assert plan.shift == 7.5 and plan.applied and caplog.text == ""
    assert plan.score_is() == ("log p - shift, shift = 7.5 for seen candidates and 0 for the others (the run's "
                               "gamma, the run's benchmark candidate list)")
    for names, benchmark in ((["dog", "cow", "pig"], BENCHMARK), (["dog", "pig"], None)):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            plan = _plan("full", names, benchmark)
            plan.log()
        assert plan.shift == 7.5
        assert "--seen-calibration full: the run's gamma 7.5 was chosen for its benchmark candidate list" in caplog.text


def test_off_no_seen_candidate_and_score_spaces() -> None:
    assert _plan("off", BENCHMARK).shift == 0.0
    assert _plan("full", ["violin", "goat"]).shift == 0.0  # nothing seen: nothing to shift
    assert "no candidate is a seen class" in _plan("full", ["violin", "goat"]).reason
    assert _plan("full", BENCHMARK, space="p").score_is().startswith("p - shift, shift = 7.5")
    assert _plan("off", BENCHMARK, space="score").score_is().startswith("the method's score (not a probability)")
    with pytest.raises(ValueError, match="calibration must be one of"):
        _plan("sometimes", BENCHMARK)
    with pytest.raises(ValueError, match="space must be one of"):
        _plan("auto", BENCHMARK, space="logits")


def test_benchmark_list_from_model_pt_or_the_run_split_files(tmp_path) -> None:
    assert benchmark_classes({"test_classes": ["a", "b"]}, None) == ["a", "b"]
    videos = {c: [f"{c}/{k}.mp4" for k in range(4)] for c in ("dog", "cow", "pig", "violin", "goat")}
    splits = write_protocol_splits(tmp_path / "splits", videos, ["dog", "cow"], ["pig"], ["violin", "goat"])
    config = SimpleNamespace(splits=str(splits), benchmark=None, split_variant="main")
    # Stage-2 training classes (seen + validation-unseen) then the test-unseen classes.
    assert benchmark_classes({}, config) == ["dog", "cow", "pig", "violin", "goat"]
    gone = SimpleNamespace(splits=str(tmp_path / "nowhere"), benchmark=None, split_variant="main")
    assert benchmark_classes({}, gone) is None


def test_predict_help_names_the_weight_options_of_every_encoder_set() -> None:
    from avzsl.pipeline.cli import predict as cli_predict

    text = " ".join(cli_predict.build_parser().format_help().split())
    for words in ("--selavi-checkpoint", "--clip-checkpoint", "--clap-checkpoint",
                  "a run on the packaged effnet_lite0_aisfx encoders (avzsl-demo) needs no weight option",
                  "auto subtracts nothing", "full subtracts the run's gamma from every seen candidate"):
        assert words in text, words
