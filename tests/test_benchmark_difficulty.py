"""Difficulty levels of the benchmark-shaped generator, class-specific nuisance and unreliable modalities (issue 18)."""

from __future__ import annotations

import numpy as np
import pytest

from avzsl.pipeline.cli import synth as cli_synth
from avzsl.pipeline.core.errors import InvalidValueError
from avzsl.pipeline.synth.benchmark import (
    DEFAULT_DIFFICULTY,
    DIFFICULTY_LEVELS,
    BenchmarkSynthSpec,
    generate_benchmark,
)

SMALL = {"benchmark": "ucf", "feature_dim": 64, "latent_dim": 16, "hidden_dim": 32}


def _by_class(spec: BenchmarkSynthSpec) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    data = generate_benchmark(spec)
    audio: dict[str, list[np.ndarray]] = {}
    visual: dict[str, list[np.ndarray]] = {}
    for v in data.videos:
        audio.setdefault(v.class_name, []).append(v.audio_mean)
        visual.setdefault(v.class_name, []).append(v.visual_mean)
    return ({k: np.stack(x) for k, x in audio.items()}, {k: np.stack(x) for k, x in visual.items()})


def test_levels_fill_the_unset_fields_and_an_explicit_value_wins() -> None:
    v1 = BenchmarkSynthSpec(difficulty="v1")
    assert {k: getattr(v1, k) for k in DIFFICULTY_LEVELS["v1"]} == DIFFICULTY_LEVELS["v1"]
    default = BenchmarkSynthSpec()
    assert default.difficulty == DEFAULT_DIFFICULTY
    assert {k: getattr(default, k) for k in DIFFICULTY_LEVELS[DEFAULT_DIFFICULTY]} == DIFFICULTY_LEVELS[
        DEFAULT_DIFFICULTY]
    assert DIFFICULTY_LEVELS["v1"] != DIFFICULTY_LEVELS["benchmark"]
    own = BenchmarkSynthSpec(difficulty="v1", latent_dim=32)
    assert own.latent_dim == 32 and own.difficulty == "v1"
    with pytest.raises(InvalidValueError, match="difficulty must be one of"):
        BenchmarkSynthSpec(difficulty="hard")
    with pytest.raises(InvalidValueError, match="unreliable_share"):
        BenchmarkSynthSpec(unreliable_share=1.5)
    with pytest.raises(InvalidValueError, match="class_nuisance_dims"):
        BenchmarkSynthSpec(class_nuisance_dims=-1)


def test_the_cli_offers_every_level_with_the_default_first() -> None:
    assert set(cli_synth.DIFFICULTY_NAMES) == set(DIFFICULTY_LEVELS)
    assert cli_synth.DIFFICULTY_NAMES[0] == DEFAULT_DIFFICULTY
    assert cli_synth.build_parser().parse_args(["--benchmark", "ucf", "--out", "x"]).difficulty == DEFAULT_DIFFICULTY


def test_the_levels_give_different_features_and_more_shared_nuisance_dims_than_features_work() -> None:
    small = {k: v for k, v in SMALL.items() if k != "latent_dim"}
    a = generate_benchmark(BenchmarkSynthSpec(difficulty="v1", **small)).videos[0].audio_mean
    b = generate_benchmark(BenchmarkSynthSpec(difficulty="benchmark", **small)).videos[0].audio_mean
    assert not np.allclose(a, b)
    wide = generate_benchmark(BenchmarkSynthSpec(**{**SMALL, "feature_dim": 16, "latent_dim": 8}, nuisance_dims=32))
    assert wide.videos[0].audio_mean.shape == (16,)


def _top_directions(x: np.ndarray, k: int) -> np.ndarray:
    centred = x - x.mean(0)
    return np.linalg.svd(centred, full_matrices=False)[2][:k].T  # (D, k) top within-class principal directions


@pytest.mark.parametrize("own", [True, False])
def test_class_specific_nuisance_is_each_class_s_own(own: bool) -> None:
    # Large nuisance (scale 5) and a large offset (no ReLU clipping): the top-2 within-class directions of a class
    # are its nuisance directions. Class-specific ones differ between classes (random 2-d subspaces of R^64 overlap
    # by about 2 * 2 / 64); shared ones are the same subspace for every class (overlap about 2).
    nuisance = ({"class_nuisance_dims": 2, "class_nuisance_scale": 5.0, "nuisance_dims": 0} if own
                else {"nuisance_dims": 2, "nuisance_scale": 5.0})
    audio, _ = _by_class(BenchmarkSynthSpec(**SMALL, offset=50.0, **nuisance))
    names = sorted(audio)[:6]
    overlaps = [np.linalg.norm(_top_directions(audio[p], 2).T @ _top_directions(audio[q], 2)) ** 2
                for i, p in enumerate(names) for q in names[i + 1:]]
    if own:
        assert max(overlaps) < 0.6, overlaps
    else:
        assert min(overlaps) > 1.6, overlaps


def test_an_unreliable_modality_carries_no_class_signal() -> None:
    def class_spread(share: float) -> np.ndarray:
        """(C, 2): distance of each class's audio / visual mean from the grand mean."""
        audio, visual = _by_class(BenchmarkSynthSpec(**SMALL, offset=50.0, class_scale=1.0, nuisance_dims=0,
                                                     unreliable_share=share, unreliable_strength=0.0))
        grand = {m: np.concatenate(list(x.values())).mean(0) for m, x in (("a", audio), ("v", visual))}
        return np.array([[np.linalg.norm(audio[c].mean(0) - grand["a"]), np.linalg.norm(visual[c].mean(0) - grand["v"])]
                         for c in sorted(audio)])

    reliable, unreliable = class_spread(0.0), class_spread(1.0)
    # Every class keeps one informative modality and loses the other (down to the noise of a class mean, far below
    # the spread of reliable class means, which the log-normal strength varies by about 2x); each modality is the
    # lost one for some classes.
    low = unreliable.min(1) < 0.25 * np.median(reliable)
    assert low.all(), unreliable.min(1)
    assert (unreliable.max(1) > 0.3 * np.median(reliable)).all()
    assert (unreliable[:, 0] < unreliable[:, 1]).any() and (unreliable[:, 1] < unreliable[:, 0]).any()
    assert (reliable.min(1) > 0.3 * np.median(reliable)).all()  # no class lost a modality
