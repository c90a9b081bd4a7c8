"""avzsl-predict end to end: a tiny run trained on real (random-weight) SeLaVi features of real tiny videos.

The session fixture extracts 7 one-window videos of 4 classes (piano and dog seen in stage 1, violin val-unseen and
so seen in stage 2, drum test-unseen; piano has 4 videos so that it has a validation and a test video), writes a
split folder and trains for 2 epochs. Predicting re-encodes videos
with the real encoders (~2 s per window on CPU), so each test predicts on as few videos as it can.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from avzsl.model.coordinate_generalize import CoordinateGeneralizeOptions
from avzsl.pipeline.cache import load_features, read_cache_info, read_class_table
from avzsl.pipeline.cli import extract as cli_extract
from avzsl.pipeline.cli import predict as cli_predict
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.data.splits import write_protocol_splits
from avzsl.pipeline.predict.predictor import Predictor
from avzsl.pipeline.predict.ranking import EncodedVideo, calibrated_scores
from avzsl.pipeline.predict.records import PredictError, encoder_request, run_class_embedder
from avzsl.pipeline.run.checkpoint import load_checkpoint, save_checkpoint
from tests.media import write_av, write_text_as_mp4

VIDEOS = {
    "piano/a.mp4": dict(color=(250, 20, 20), freq_hz=300),
    "piano/b.mp4": dict(color=(230, 40, 10), freq_hz=330),
    "piano/c.mp4": dict(color=(210, 60, 30), freq_hz=360),
    "piano/d.mp4": dict(color=(190, 30, 50), freq_hz=390),
    "dog/a.mp4": dict(color=(20, 20, 250), freq_hz=900),
    "violin/a.mp4": dict(color=(20, 240, 20), freq_hz=600),
    "drum/a.mp4": dict(color=(240, 240, 20), freq_hz=150),
}
CANDIDATES = "piano,dog,violin,drum,guitar,trumpet"  # guitar and trumpet: never in the cache or the run


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("predict")
    videos = root / "videos"
    for rel, kw in VIDEOS.items():
        (videos / rel).parent.mkdir(parents=True, exist_ok=True)
        write_av(videos / rel, duration_s=1.2, size=(64, 48), **kw)
    cache = root / "cache"
    extract = ["--videos", str(videos), "--out", str(cache), "--random-weights", "--seed", "3"]
    assert cli_extract.main([*extract, "--workers", "1", "--batch-size", "8", "--no-progress"]) == 0
    class_videos: dict[str, list[str]] = {}
    for rel in VIDEOS:
        class_videos.setdefault(rel.split("/")[0], []).append(rel)
    splits = write_protocol_splits(root / "splits", class_videos, ["piano", "dog"], ["violin"], ["drum"])
    run = root / "run"
    train = ["--cache", str(cache), "--splits", str(splits), "--out", str(run)]
    assert cli_train.main([*train, "--epochs", "2", "--batch-size", "8", "--device", "cpu"]) == 0
    bad = root / "bad" / "notes.mp4"
    bad.parent.mkdir()
    write_text_as_mp4(bad)
    return {"root": root, "videos": videos, "cache": cache, "run": run, "bad": bad}


# The default configuration scores cosine similarities over tau = 0.05, so float32 rounding in the features and
# reductions reaches the probabilities 1 / tau = 20 times larger than with the paper's tau = 1 the tolerances were
# set for.
LOGIT_SCALE = 1.0 / CoordinateGeneralizeOptions().tau


def _predict(tiny_run: dict[str, Path], *args: str) -> list[str]:
    return ["--run", str(tiny_run["run"]), "--random-weights", "--device", "cpu", "--workers", "0", *args]


def _cached_p(tiny_run: dict[str, Path], video_ids: list[str], predictor: Predictor) -> torch.Tensor:
    """p of the cache's stored features for ``video_ids`` against CANDIDATES (no re-encoding)."""
    table = load_features(tiny_run["cache"], video_ids)
    encoded = {
        vid: EncodedVideo(table.audio[i].numpy(), table.visual[i].numpy(), None, None, np.zeros((1, 2)))
        for i, vid in enumerate(table.video_ids)
    }
    names = CANDIDATES.split(",")
    ranked = predictor.rank({vid: encoded[vid] for vid in video_ids}, predictor.candidates(names), False, len(names))
    p = {vid: {r.class_name: r.probability for r in ranked[vid].predictions} for vid in video_ids}
    return torch.tensor([[p[vid][name] for name in names] for vid in video_ids])


def test_json_ranks_new_and_seen_classes_and_reports_bad_videos(tiny_run, capsys) -> None:
    good = [str(tiny_run["videos"] / "piano/a.mp4"), str(tiny_run["videos"] / "drum/a.mp4")]
    bad = str(tiny_run["bad"])
    capsys.readouterr()
    code = cli_predict.main(_predict(tiny_run, "--classes", CANDIDATES, "--top", "6", "--json", *good, bad))
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert list(doc) == [*good, bad]
    assert "unreadable" in doc[bad]["error"]
    predictor = Predictor(tiny_run["run"], random_weights=True)
    gamma = predictor.gamma
    # Re-encoding the raw videos gives the features the cache stored: same p as scoring the cached features.
    expected_p = _cached_p(tiny_run, ["piano/a.mp4", "drum/a.mp4"], predictor)
    names = CANDIDATES.split(",")
    for row, path in enumerate(good):
        entry = doc[path]
        assert entry["windows"] == 1
        preds = entry["predictions"]
        assert sorted(p["class"] for p in preds) == sorted(names)  # new class names work
        scores = [p["score"] for p in preds]
        assert scores == sorted(scores, reverse=True)
        assert sum(p["p"] for p in preds) == pytest.approx(1, abs=1e-5)
        # The default (auto) applies no calibration shift to a list that is not the run's benchmark list.
        assert entry["score_is"].startswith("log p (no calibration shift") and gamma is not None
        for p in preds:
            assert p["seen"] == (p["class"] in ("piano", "dog", "violin"))
            assert p["shift"] == 0.0 and p["log_p"] == pytest.approx(math.log(p["p"]), abs=1e-4)
            assert p["score"] == pytest.approx(p["log_p"], abs=1e-6)
            assert p["p"] == pytest.approx(float(expected_p[row, names.index(p["class"])]), abs=1e-4)


def test_calibration_subtracts_gamma_from_seen_classes(tiny_run, tmp_path: Path, capsys, caplog) -> None:
    # A copy of the run whose gamma is clearly non-zero (a 2-epoch run may choose gamma = 0).
    run = tmp_path / "run"
    shutil.copytree(tiny_run["run"], run)
    state = load_checkpoint(run / "model.pt")
    state["gamma"] = 0.3
    save_checkpoint(run / "model.pt", state)
    video = str(tiny_run["videos"] / "violin/a.mp4")
    base = ["--run", str(run), "--random-weights", "--device", "cpu", "--workers", "0", "--classes", CANDIDATES]
    capsys.readouterr()
    assert cli_predict.main([*base, "--seen-calibration", "full", "--top", "6", "--json", video]) == 0
    entry = json.loads(capsys.readouterr().out)[video]
    assert entry["score_is"].startswith("log p - shift, shift = 0.3 for seen candidates")
    # The candidates (with guitar, trumpet) are not the run's benchmark list: one warning says gamma is not tuned.
    assert caplog.text.count("--seen-calibration full: the run's gamma 0.3 was chosen for its benchmark") == 1
    auto = {p["class"]: p for p in entry["predictions"]}
    predictor = Predictor(run, random_weights=True)
    p = _cached_p(tiny_run, ["violin/a.mp4"], predictor)[0]
    for c, name in enumerate(CANDIDATES.split(",")):
        assert auto[name]["p"] == pytest.approx(float(p[c]), abs=1e-4)
        shift = 0.3 if auto[name]["seen"] else 0.0
        assert auto[name]["shift"] == pytest.approx(shift)
        assert auto[name]["score"] == pytest.approx(math.log(float(p[c])) - shift, abs=1e-4)
    # Calibration off: no shift. Table output says what the score is and marks seen/unseen.
    off = calibrated_scores(p[None], [False] * len(p), 0.3)[0]
    assert torch.equal(off, p)
    assert cli_predict.main([*base, "--seen-calibration", "off", "--top", "3", video]) == 0
    text = capsys.readouterr().out
    assert "score = log p (no calibration shift: --seen-calibration off)" in text
    assert "WARNING" in text and "MEANINGLESS" in text
    assert "p     log p    shift     score  seen" in text
    rows = [line.split() for line in text.splitlines() if line.strip()[:1].isdigit()]
    assert [int(r[0]) for r in rows] == [1, 2, 3]
    top3 = sorted(range(len(p)), key=lambda c: -float(p[c]))[:3]
    assert [r[1] for r in rows] == [CANDIDATES.split(",")[c] for c in top3]
    for r in rows:  # rank, class, p, log p, shift, score, seen
        c = CANDIDATES.split(",").index(r[1])
        assert float(r[2]) == pytest.approx(float(p[c]), abs=1e-4)
        assert float(r[3]) == pytest.approx(math.log(float(p[c])), abs=1e-3) and float(r[4]) == 0.0
        assert float(r[5]) == pytest.approx(float(r[3]), abs=1e-4)
        assert r[6] == ("seen" if r[1] in ("piano", "dog", "violin") else "unseen")


def test_refusals_exit_2_with_a_message(tiny_run, tmp_path: Path, caplog) -> None:
    video = str(tiny_run["videos"] / "piano/a.mp4")
    base = ["--run", str(tiny_run["run"]), "--device", "cpu", "--classes", "piano,dog", video]
    # Weights mismatch: the cache was extracted with random weights.
    assert cli_predict.main(base) == 2
    assert "RANDOM encoder weights" in caplog.text and "--random-weights" in caplog.text
    caplog.clear()
    fake = tmp_path / "selavi_vgg_sound.pth"
    fake.write_bytes(b"not a checkpoint")
    assert cli_predict.main([*base, "--selavi-checkpoint", str(fake)]) == 2
    assert "RANDOM encoder weights" in caplog.text
    caplog.clear()
    # The run's class names used the bundled GloVe vectors: another file is refused.
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("2 3\npiano 1 0 0\ndog 0 1 0\n")
    assert cli_predict.main([*base, "--random-weights", "--word-vectors", str(vectors)]) == 2
    assert "bundled GloVe" in caplog.text
    caplog.clear()
    # Out-of-vocabulary class words are listed.
    oov = ["--run", str(tiny_run["run"]), "--random-weights", "--classes", "piano,qxzvblorp blorptastic", video]
    assert cli_predict.main(oov) == 2
    assert "qxzvblorp" in caplog.text and "blorptastic" in caplog.text
    caplog.clear()
    assert cli_predict.main(["--run", str(tmp_path / "nowhere"), "--random-weights", "--classes", "dog", video]) == 2
    assert "not an avzsl run directory" in caplog.text


def test_no_usable_video_exits_1(tiny_run, capsys, caplog) -> None:
    args = _predict(tiny_run, "--classes", "piano,drum", str(tiny_run["bad"]))
    capsys.readouterr()
    assert cli_predict.main(args) == 1
    assert f"{tiny_run['bad']}: ERROR unreadable" in capsys.readouterr().out
    # A path that does not exist is one error line of the batch, like an unreadable file (exit 1: nothing predicted).
    missing = str(tiny_run["root"] / "missing.mp4")
    assert cli_predict.main(_predict(tiny_run, "--classes", "piano,drum", str(tiny_run["bad"]), missing)) == 1
    out = capsys.readouterr().out
    assert f"{tiny_run['bad']}: ERROR unreadable" in out and f"{missing}: ERROR not_a_file: no such file" in out
    # ... and the other inputs of the batch are still predicted (exit 0).
    good = str(tiny_run["videos"] / "drum/a.mp4")
    assert cli_predict.main(_predict(tiny_run, "--classes", "piano,drum", "--json", missing, good)) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc[missing] == {"error": "not_a_file: no such file or folder", "status": "not_a_file"}
    assert len(doc[good]["predictions"]) == 2


def _json_predictions(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_cache_input_scores_stored_features(tiny_run, capsys, caplog) -> None:
    cache = tiny_run["cache"]
    capsys.readouterr()
    assert cli_predict.main(_predict(tiny_run, "--classes", CANDIDATES, "--top", "6", "--json", str(cache))) == 0
    doc = _json_predictions(capsys)
    ids = sorted(VIDEOS)
    assert sorted(doc) == sorted(f"{cache}:{vid}" for vid in ids)
    predictor = Predictor(tiny_run["run"], random_weights=True)
    expected = _cached_p(tiny_run, ids, predictor)
    names = CANDIDATES.split(",")
    for row, vid in enumerate(ids):
        for p in doc[f"{cache}:{vid}"]["predictions"]:
            assert p["p"] == pytest.approx(float(expected[row, names.index(p["class"])]), abs=1e-6)
    # A cache extracted differently from the run's training cache is refused, naming what differs.
    other = tiny_run["root"] / "other_cache"
    shutil.copytree(cache, other)
    info = json.loads((other / "cache.json").read_text())
    info["extraction"]["windows"] = "avca"
    (other / "cache.json").write_text(json.dumps(info))
    assert cli_predict.main(_predict(tiny_run, "--classes", CANDIDATES, str(other))) == 2
    assert "window schedule 'avca' (run: 'clean')" in caplog.text


def test_one_candidate_warns(tiny_run, capsys, caplog) -> None:
    assert cli_predict.main(_predict(tiny_run, "--classes", "piano", str(tiny_run["cache"]))) == 0
    assert "only one candidate class (piano)" in caplog.text


def test_oov_and_class_phrases_options(tiny_run, tmp_path: Path, capsys, caplog) -> None:
    cache = str(tiny_run["cache"])
    # The run's policy is "error": the hint names the CLI option; --oov skip drops the unknown word.
    assert cli_predict.main(_predict(tiny_run, "--classes", "piano,dog qxzvblorp", cache)) == 2
    assert "--oov skip" in caplog.text
    capsys.readouterr()
    skip = _predict(tiny_run, "--classes", "piano,dog qxzvblorp", "--oov", "skip", "--json", cache)
    assert cli_predict.main(skip) == 0
    skipped = _json_predictions(capsys)
    # --class-phrases: "mystery" embedded as "dog" ties with dog exactly.
    phrases = tmp_path / "phrases.csv"
    phrases.write_text("original,manual\nmystery,dog\n")
    args = _predict(tiny_run, "--classes", "dog,mystery", "--class-phrases", str(phrases), "--json", cache)
    assert cli_predict.main(args) == 0
    for entry in _json_predictions(capsys).values():
        p = {r["class"]: r["p"] for r in entry["predictions"]}
        assert p["dog"] == pytest.approx(p["mystery"], abs=1e-7 * LOGIT_SCALE)
    # The candidate keeps its name as given; only its embedded phrase lost the unknown word.
    first = next(iter(skipped.values()))["predictions"]
    assert {r["class"] for r in first} == {"piano", "dog qxzvblorp"}


def test_unlabeled_folder_extracts_and_predicts(tiny_run, capsys, caplog) -> None:
    flat = tiny_run["root"] / "flat"
    flat.mkdir()
    shutil.copy(tiny_run["videos"] / "drum" / "a.mp4", flat / "clip.mp4")
    cache = tiny_run["root"] / "flat_cache"
    extract = ["--videos", str(flat), "--out", str(cache), "--random-weights", "--seed", "3", "--workers", "0"]
    with caplog.at_level("INFO"):
        assert cli_extract.main(extract) == 0  # stderr is not a terminal here: progress comes as log lines
    assert "extract: 1/1 videos (100%)" in caplog.text
    assert (cache / "index.csv").read_text().splitlines()[1].startswith("clip.mp4,,")  # class unknown
    table = load_features(cache)
    assert table.class_names == [""]
    capsys.readouterr()
    assert cli_predict.main(_predict(tiny_run, "--classes", CANDIDATES, "--top", "6", "--json", str(cache))) == 0
    from_cache = _json_predictions(capsys)[f"{cache}:clip.mp4"]["predictions"]
    expected = {r["class"]: r["p"] for r in from_cache}
    # The same video in the labeled cache: the same features, so the same p.
    predictor = Predictor(tiny_run["run"], random_weights=True)
    p = _cached_p(tiny_run, ["drum/a.mp4"], predictor)[0]
    for c, name in enumerate(CANDIDATES.split(",")):
        assert expected[name] == pytest.approx(float(p[c]), abs=1e-5 * LOGIT_SCALE)


def test_run_record_checks(tiny_run, tmp_path: Path) -> None:
    info = read_cache_info(tiny_run["cache"])
    request = encoder_request(info, None, random_weights=True)
    assert request.random_seed == 3 and request.decoder == "pyav" and request.windows == "clean"
    checkpoint_info = json.loads(json.dumps(info))
    checkpoint_info["weights"] = {"sha256": "ab" * 32, "random_seed": None}
    with pytest.raises(PredictError, match="--selavi-checkpoint"):
        encoder_request(checkpoint_info, None, random_weights=False)
    with pytest.raises(PredictError, match="cannot reproduce"):
        encoder_request(checkpoint_info, None, random_weights=True)
    imported = {"encoder": {"name": "selavi (imported from AVCA main)"}, "weights": {"sha256": "unknown (imported)"}}
    with pytest.raises(PredictError, match="avzsl-extract did not compute"):
        encoder_request(imported, None, random_weights=True)
    changed = json.loads(json.dumps(info))
    changed["encoder"]["spec_hash"] = "0" * 16
    with pytest.raises(PredictError, match="differs"):
        encoder_request(changed, None, random_weights=True)
    # A run embedded with a word-vector file needs that very file (fingerprint).
    used, other = tmp_path / "used.txt", tmp_path / "other.txt"
    used.write_text("2 3\npiano 1 0 0\ndog 0 1 0\n")
    other.write_text("2 3\npiano 0 0 1\ndog 0 1 0\n")
    from avzsl.extractors.text.class_names import ClassNameEmbedder

    file_info = {"class_embedder": ClassNameEmbedder(used).provenance()}
    with pytest.raises(PredictError, match="pass --word-vectors"):
        run_class_embedder(file_info, None)
    with pytest.raises(PredictError, match="not the word-vector file"):
        run_class_embedder(file_info, other)
    assert run_class_embedder(file_info, used).dim == 3


def _run_copy(tiny_run, tmp_path: Path, edit_state, cache: str | None = None) -> Path:
    """A copy of the tiny run with its model.pt payload edited (and its config pointing at ``cache``)."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run["run"], run)
    state = load_checkpoint(run / "model.pt")
    edit_state(state)
    save_checkpoint(run / "model.pt", state)
    if cache is not None:
        record = json.loads((run / "config.json").read_text())
        record["config"]["cache"] = cache
        (run / "config.json").write_text(json.dumps(record))
    return run


def test_run_records_its_class_phrases_and_prediction_needs_no_cache(tiny_run, tmp_path: Path, caplog) -> None:
    table = read_class_table(tiny_run["cache"])
    recorded = load_checkpoint(tiny_run["run"] / "model.pt")["class_phrases"]
    assert recorded == dict(zip(table.names, table.phrases, strict=True))

    def piano_as_dog(state: dict) -> None:
        state["class_phrases"]["piano"] = "dog"

    # The phrases come from model.pt, not from the cache: here the cache is gone and piano embeds as "dog".
    run = _run_copy(tiny_run, tmp_path, piano_as_dog, cache=str(tmp_path / "moved"))
    candidates = Predictor(run, random_weights=True).candidates(["Piano", "dog", "drum"])
    assert candidates.phrases == ["dog", "dog", "drum"]
    np.testing.assert_array_equal(candidates.embeddings[0], candidates.embeddings[1])
    assert "cache is not readable" not in caplog.text


def test_run_without_recorded_phrases_reads_the_cache_class_table(tiny_run, tmp_path: Path, caplog) -> None:
    def older_run(state: dict) -> None:  # a model.pt written before the phrases were recorded
        del state["class_phrases"]

    table = read_class_table(tiny_run["cache"])
    expected = {n.lower(): p for n, p in zip(table.names, table.phrases, strict=True)}
    assert Predictor(_run_copy(tiny_run, tmp_path / "a", older_run), random_weights=True).known_phrases == expected

    # Its cache moved: default phrases, with a warning when the run was embedded with a phrase map.
    def older_run_with_map(state: dict) -> None:
        older_run(state)
        info = json.loads(state["cache_info"])
        info["class_embedder"]["phrase_source"] = "map"
        state["cache_info"] = json.dumps(info, sort_keys=True)

    moved = _run_copy(tiny_run, tmp_path / "b", older_run_with_map, cache=str(tmp_path / "moved"))
    predictor = Predictor(moved, random_weights=True)
    assert predictor.known_phrases == {}
    assert "embedded with a phrase map but its cache is not readable" in caplog.text
    assert predictor.candidates(["piano", "dog"]).phrases == ["piano", "dog"]
