"""Branch scores and per-window support (pipeline/predict/explain.py, model/branches.py) on real model objects.

The identities checked: the paper model's branch scores are the distributions of eq. 3-4 and fuse into its p by
eq. 6; the zero-shot scorer's are the two cosines its score mixes; a window's support is the model's score of that
window's features alone, ranked with the same calibration; a cached feature has no windows; the --explain text
lays out exactly those numbers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from avzsl.model.branches import COSINE, SOFTMAX, branch_scores, has_branches
from avzsl.model.coordinate_generalize import CoordinateGeneralizeMethod
from avzsl.model.networks import fused_log_scores
from avzsl.model.registry import FeatureBatch, FeatureDims, build_method
from avzsl.pipeline.cli.explain_view import LEVELS, explain_text, level
from avzsl.pipeline.predict.explain import Scoring, rank_videos, results_document, window_support
from avzsl.pipeline.predict.inputs import CachedVideo
from avzsl.pipeline.predict.ranking import Candidates, EncodedVideo, VideoFailure

DIMS = FeatureDims(audio_dim=12, visual_dim=10, text_dim=8)
NAMES = ["piano", "dog", "violin", "drum"]


def _candidates(seen: list[bool] | None = None, text_dim: int = DIMS.text_dim) -> Candidates:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(NAMES), text_dim)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return Candidates(list(NAMES), list(NAMES), emb, seen or [False] * len(NAMES))


def _video(windows: int, seed: int = 1) -> EncodedVideo:
    rng = np.random.default_rng(seed)
    audio = rng.normal(size=(windows, DIMS.audio_dim)).astype(np.float32)
    visual = rng.normal(size=(windows, DIMS.visual_dim)).astype(np.float32)
    sec = np.stack([np.arange(windows), np.arange(windows) + 1.0], axis=1)
    return EncodedVideo(audio.mean(0), visual.mean(0), audio, visual, sec)


def _method() -> CoordinateGeneralizeMethod:
    torch.manual_seed(0)
    method = build_method("coordinate_generalize", DIMS, {"standardize": False, "tau": 0.5})
    method.calibrated_on = "calibration_scores"  # as load_run_model marks a run calibrated on log p
    return method.eval()


def test_paper_model_branches_are_eq_3_4_and_fuse_into_p() -> None:
    method = _method()
    video = _video(4)
    audio, visual = torch.from_numpy(video.audio_seq), torch.from_numpy(video.visual_seq)
    class_emb = torch.from_numpy(_candidates().embeddings)
    got = branch_scores(method, audio, visual, class_emb, batch_size=3)  # two chunks
    assert got is not None and got.kind == SOFTMAX
    torch.testing.assert_close(got.visual.sum(1), torch.ones(4))
    torch.testing.assert_close(got.audio.sum(1), torch.ones(4))
    with torch.no_grad():
        out = method.net(audio, visual, class_emb)
        p = method.scores(FeatureBatch(audio, visual), class_emb)
    torch.testing.assert_close(got.visual, out.p_v)
    beta = method.net.config.branch_beta
    torch.testing.assert_close(beta * got.visual + (1 - beta) * got.audio, p)
    assert not method.training  # the mode is restored


def test_zero_shot_branches_are_the_two_cosines_it_mixes() -> None:
    dims = FeatureDims(audio_dim=6, visual_dim=5, text_dim=11)
    method = build_method("zero_shot", dims, {"audio_weight": 0.3})
    rng = np.random.default_rng(2)
    audio = torch.from_numpy(rng.normal(size=(3, 6)).astype(np.float32))
    visual = torch.from_numpy(rng.normal(size=(3, 5)).astype(np.float32))
    text = torch.from_numpy(rng.normal(size=(4, 11)).astype(np.float32))
    got = branch_scores(method, audio, visual, text)
    assert got is not None and got.kind == COSINE
    assert float(got.visual.abs().max()) <= 1 + 1e-6
    torch.testing.assert_close(0.7 * got.visual + 0.3 * got.audio, method.scores(FeatureBatch(audio, visual), text))


def test_method_without_two_branches_gives_none() -> None:
    method = build_method("devise", DIMS, {})
    assert not has_branches(method)
    assert branch_scores(method, torch.zeros(2, 12), torch.zeros(2, 10), torch.zeros(4, 8)) is None
    result = rank_videos(Scoring(method, _candidates()), {"v": _video(2)}, top=2)["v"]
    assert result.branches is None and all(r.visual is None and r.audio is None for r in result.predictions)
    assert len(result.window_support) == 2  # windows are scored for any method


def test_window_support_scores_each_window_alone_with_the_same_calibration() -> None:
    method = _method()
    candidates = _candidates(seen=[True, True, False, False])
    video = _video(5)
    scoring = Scoring(method, candidates, gamma=0.7, log_p=True)
    result = rank_videos(scoring, {"clip": video}, top=3)["clip"]
    ranked = [r.class_name for r in result.predictions]
    support = result.window_support
    assert [(w.start, w.end) for w in support] == [(float(t), t + 1.0) for t in range(5)]
    class_emb = torch.from_numpy(candidates.embeddings)
    for t, window in enumerate(support):
        one = FeatureBatch(torch.from_numpy(video.audio_seq[t:t + 1]), torch.from_numpy(video.visual_seq[t:t + 1]))
        with torch.no_grad():
            out = method.net(one.audio, one.visual, class_emb)
            log_p = fused_log_scores(out.logits_v, out.logits_a, method.net.config.branch_beta)[0]
        assert sorted(window.p) == sorted(ranked)
        for name in ranked:
            assert window.p[name] == pytest.approx(float(out.p[0, NAMES.index(name)]), abs=1e-5)
        calibrated = log_p - 0.7 * torch.tensor([1.0, 1.0, 0.0, 0.0])
        assert window.top == NAMES[int(calibrated.argmax())]
    # The video itself: ranked by calibrated log p of its mean feature, p reported as a probability.
    first = result.predictions[0]
    assert first.score == pytest.approx(np.log(first.probability) - (0.7 if first.seen else 0.0), abs=1e-4)
    assert result.branches == SOFTMAX and first.visual is not None
    # Without calibration the seen classes are not shifted: another window may win.
    plain = window_support(Scoring(method, candidates, None, True), video, ranked)
    for without, with_gamma in zip(plain, support, strict=True):
        assert without.p == pytest.approx(with_gamma.p)


def test_cached_feature_has_no_window_support_and_json_keeps_its_shape() -> None:
    method = _method()
    video = _video(3)
    cached = CachedVideo(video.audio_mean, video.visual_mean)
    results = rank_videos(Scoring(method, _candidates()), {"cache:a": cached, "b.mp4": video}, top=2)
    assert results["cache:a"].window_support == [] and len(results["b.mp4"].window_support) == 3
    # Mean feature, same model: both rows rank the same way.
    order = [r.class_name for r in results["b.mp4"].predictions]
    assert [r.class_name for r in results["cache:a"].predictions] == order
    document = results_document({**results, "bad.mp4": VideoFailure("unreadable", "bad.mp4: no stream")})
    assert document["bad.mp4"] == {"error": "unreadable: bad.mp4: no stream", "status": "unreadable"}
    entry = document["b.mp4"]
    assert set(entry) == {"predictions", "windows", "score_is", "branches", "window_support"}
    assert set(entry["predictions"][0]) == {"class", "score", "p", "log_p", "shift", "seen", "visual", "audio"}
    assert set(entry["window_support"][0]) == {"start", "end", "top", "p"}


def test_explain_text_lays_out_the_same_numbers() -> None:
    method = _method()
    results = rank_videos(Scoring(method, _candidates()), {"clip.mp4": _video(6)}, top=3)
    results["bad.mp4"] = VideoFailure("unreadable", "no stream")
    text = explain_text(results, None, False)
    lines = text.splitlines()
    assert lines[0] == "clip.mp4 (6 windows)"
    item = results["clip.mp4"]
    rows = [line.split() for line in lines if line.strip()[:1].isdigit() and "|" not in line]
    assert [r[1] for r in rows] == [r.class_name for r in item.predictions]
    for row, r in zip(rows, item.predictions, strict=True):
        assert float(row[5]) == pytest.approx(r.visual, abs=1e-4) and float(row[6]) == pytest.approx(r.audio, abs=1e-4)
    strips = [line for line in lines if "|" in line and "first in" in line]
    assert len(strips) == 3
    for line, r in zip(strips, item.predictions, strict=True):
        strip = line.split("|")[1]
        assert strip == "".join(level(w.p[r.class_name]) for w in item.window_support)
        assert f"first in {sum(w.top == r.class_name for w in item.window_support)} of 6" in line
    assert "bad.mp4: ERROR unreadable: no stream" in text
    assert level(0.0) == " " and level(0.95) == "@" and level(1.0) == LEVELS[-1]
