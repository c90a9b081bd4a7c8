"""ConSE end to end on the packaged encoders: ``avzsl-predict --zero-shot`` offline, and a protocol (sweep) row.

Clips are made from the demo's real pictures and recordings in its clip style (``pipeline/synth/real_media.py``),
1.2 s (one window) each, so that extraction stays a few seconds on a CPU.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from avzsl.pipeline.cli import extract as cli_extract
from avzsl.pipeline.cli import predict as cli_predict
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.data.splits import write_protocol_splits
from avzsl.pipeline.predict.predictor import Predictor
from avzsl.pipeline.sweep.methods import MethodSpec, skip_reason
from avzsl.pipeline.synth.demo_videos import write_video
from avzsl.pipeline.synth.real_media import FPS, load_picture, load_recording, render_audio, render_frames

CLASSES = ("zebra", "hen", "violin", "kettle", "elephant")


def _clip(path: Path, name: str, k: int) -> str:
    rng = np.random.default_rng([19, CLASSES.index(name), k])
    write_video(path, render_frames(load_picture(name), round(1.2 * FPS), rng), render_audio(load_recording(name),
                                                                                              1.2, rng))
    return str(path)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("conse")
    # Seen classes (zebra, hen, violin) get 4 clips: one for stage-1 validation, one for the test, two to train on.
    counts = {"zebra": 4, "hen": 4, "violin": 4, "kettle": 2, "elephant": 2}
    videos = {name: [_clip(root / "videos" / name / f"{k}.mp4", name, k) for k in range(n)]
              for name, n in counts.items()}
    return {"root": root, "videos": videos}


def test_zero_shot_predict_needs_no_weight_option_and_labels_its_score(world: dict, capsys) -> None:
    clips = [world["videos"][name][0] for name in ("zebra", "hen", "violin")]
    missing = str(world["root"] / "nowhere.mp4")
    capsys.readouterr()
    code = cli_predict.main(["--zero-shot", "--classes", ",".join(CLASSES), "--json", "--workers", "0", "--device",
                             "cpu", *clips, missing])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    for clip, truth in zip(clips, ("zebra", "hen", "violin"), strict=True):
        entry = doc[clip]
        assert entry["predictions"][0]["class"] == truth
        assert "ConSE" in entry["score_is"] and "no probability" in entry["score_is"]
        assert all(r["p"] is None and r["log_p"] is None and r["shift"] == 0.0 and not r["seen"]
                   for r in entry["predictions"])
        scores = [r["score"] for r in entry["predictions"]]
        assert scores == sorted(scores, reverse=True) and all(-1.0 <= s <= 1.0 for s in scores)
    assert doc[missing]["status"] == "not_a_file"
    # Text output: the score line, and no p/log p columns for a scorer without probabilities.
    assert cli_predict.main(["--zero-shot", "--encoder", "effnet_lite0_aisfx", "--classes", "zebra,hen", "--workers",
                             "0", "--device", "cpu", clips[0]]) == 0
    text = capsys.readouterr().out
    assert text.startswith("score = cos(mixture of the word vectors of the video's top-10 ImageNet labels")
    assert "log p" not in text.split("\n", 1)[1]
    # A checkpoint option with the packaged encoders is a usage error.
    assert cli_predict.main(["--zero-shot", "--encoder", "effnet_lite0_aisfx", "--clip-checkpoint",
                             str(world["root"]), "--classes", "a,b", clips[0]]) == 2


@pytest.mark.slow
def test_conse_is_a_protocol_row_and_its_run_predicts(world: dict, capsys) -> None:
    root: Path = world["root"]
    cache = root / "cache"
    assert cli_extract.main(["--videos", str(root / "videos"), "--out", str(cache), "--encoder",
                             "effnet_lite0_aisfx", "--workers", "0", "--no-progress"]) == 0
    rel = {name: [str(Path(p).relative_to(root / "videos")) for p in paths]
           for name, paths in world["videos"].items()}
    splits = write_protocol_splits(root / "splits", rel, ["zebra", "hen", "violin"], ["kettle"], ["elephant"])
    assert skip_reason(MethodSpec("conse"), cache) is None
    run = root / "run"
    assert cli_train.main(["--cache", str(cache), "--splits", str(splits), "--out", str(run), "--method", "conse",
                           "--device", "cpu"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["method"] == "conse" and 0 <= metrics["ZSL"] <= 100
    # The saved run holds its bridge: it scores the cache's clips without the encoders' files being read again.
    predictor = Predictor(run, encode_videos=False)
    assert bool(predictor.model.bridge_set) and predictor.score_space() == "score"
    assert predictor.benchmark_list() == ["zebra", "hen", "violin", "kettle", "elephant"]
    capsys.readouterr()
    assert cli_predict.main(["--run", str(run), "--classes", ",".join(CLASSES), "--json", str(cache)]) == 0
    doc = json.loads(capsys.readouterr().out)
    firsts = {key.split(":")[-1].split("/")[0]: entry["predictions"][0]["class"] for key, entry in doc.items()}
    assert sum(truth == first for truth, first in firsts.items()) >= 4
    assert all(entry["score_is"].startswith("the method's score") for entry in doc.values())
    # A cache whose encoder has no named classifier head cannot feed ConSE: the sweep skips it, saying why.
    other = root / "other_cache"
    shutil.copytree(cache, other)
    info = json.loads((other / "cache.json").read_text())
    info["encoder"]["name"] = "selavi_vggsound"
    (other / "cache.json").write_text(json.dumps(info))
    assert "named classifier head" in skip_reason(MethodSpec("conse"), other)
