"""``bench/avca_parity.py``: parsing the reference's evaluation log and the mean ± std table.

The log sample below is the shape ``get_evaluation.py`` of ExplainableML/AVCA-GZSL writes (its ``LogFormatter``
prefix, the two ``Load from epoch`` lines, the beta line and the raw-string performance line with its leading
newline and trailing spaces), written by hand here, not copied from a run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("avca_parity", Path(__file__).parents[1] / "bench" / "avca_parity.py")
assert _SPEC is not None and _SPEC.loader is not None
parity = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(parity)

_PREFIX = "INFO - 12/02/26 19:01:0{} - 0:00:0{} - "
SAMPLE = (
    _PREFIX.format(2, 3) + "Loading model weights from runs/a/AVCA_score.pt\n"
    + _PREFIX.format(2, 3) + "Load from epoch: 6\n"
    + _PREFIX.format(2, 3) + "Loading model weights from runs/b/checkpoints/AVCA_score_ckpt_5.pt\n"
    + _PREFIX.format(2, 3) + "Load from epoch: 6\n"
    + _PREFIX.format(3, 4) + "Validation betas:\tAudio=0.6000000238418579\tVideo=0.6000000238418579\n"
    + _PREFIX.format(3, 4) + "Best beta combined: 0.6000000238418579\n"
    # test.py logs a raw triple-quoted string: a newline, indentation, trailing spaces.
    + _PREFIX.format(4, 5) + "\n            Seen performance=31.25, Unseen performance=17.04, "
    "GZSL performance=22.05, ZSL performance=19.90 \n            \n"
    + _PREFIX.format(4, 5) + "FINISHED\n"
)


def test_parse_reference_eval_reads_test_metrics_beta_and_epoch():
    out = parity.parse_reference_eval(SAMPLE)
    assert out == {"S": 31.25, "U": 17.04, "H": 22.05, "ZSL": 19.90, "beta": pytest.approx(0.6), "epoch": 6.0}


def test_parse_reference_eval_uses_the_last_evaluation_and_refuses_a_log_without_one():
    rerun = SAMPLE + SAMPLE.replace("GZSL performance=22.05", "GZSL performance=9.50")
    assert parity.parse_reference_eval(rerun)["H"] == 9.50
    with pytest.raises(ValueError, match="Seen performance"):
        parity.parse_reference_eval(SAMPLE.split("Seen performance")[0])
    # A beta of 0 is logged by the reference as 1e-10: the exponent form must parse.
    tiny = parity.parse_reference_eval(SAMPLE.replace("combined: 0.6000000238418579", "combined: 1e-10"))
    assert tiny["beta"] == 1e-10


def test_summary_and_table_mean_and_sample_std():
    rows = {0: {"S": 10.0, "U": 20.0, "H": 13.0, "ZSL": 5.0},
            1: {"S": 14.0, "U": 22.0, "H": 17.0, "ZSL": 7.0}}
    stats = parity.summarise(list(rows.values()))
    assert stats["H"] == pytest.approx((15.0, 2.8284271))  # sample std (ddof=1) of 13, 17
    table = parity.format_table({"reference": rows, "avzsl": {0: rows[0]}})
    assert "| reference | 1 | 14.00 | 22.00 | 17.00 | 7.00 |" in table
    assert "| reference | mean ± std | 12.00 ± 2.83 | 21.00 ± 1.41 | 15.00 ± 2.83 | 6.00 ± 1.41 |" in table
    assert "| avzsl | mean ± std | 10.00 ± 0.00 | 20.00 ± 0.00 | 13.00 ± 0.00 | 5.00 ± 0.00 |" in table


def test_validation_h_and_replayed_plateau_schedule():
    log = "".join(_PREFIX.format(1, 1) + f"VALID\tEpoch: {i}/8\tIteration: {50 * i + 49}\tLoss: 4.2\t"
                  f"ZSL score: 0.15\tHM: {h:.4f}\n" for i, h in enumerate([0.10, 0.20, 0.19, 0.18, 0.20, 0.17]))
    log += _PREFIX.format(1, 1) + "TRAIN\tEpoch: 6/8\tIteration: 349\tLoss: 3.9\t\n"
    hs = parity.parse_validation_h(log)
    assert hs == [0.10, 0.20, 0.19, 0.18, 0.20, 0.17]
    # Best 0.20 after epoch 2; epochs 3, 4, 5 (0.20 is no improvement) and 6 do not beat it: with patience 3 the
    # rate drops after the 4th bad epoch, epoch 6.
    assert parity.plateau_drops(hs) == [6]
    assert parity.plateau_drops([0.1, 0.2, 0.3, 0.4]) == []
