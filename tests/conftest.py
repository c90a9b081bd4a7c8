"""Shared fixtures: small synthetic feature caches (real HDF5 files) built once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from avzsl.pipeline.synth.features import SyntheticSpec, make_synthetic_cache
from tests import logtext

logtext.install()


@pytest.fixture(scope="session")
def synthetic_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A synthetic cache of 16 classes (8 seen, 4 val-unseen, 4 test-unseen) x 20 videos, and its split folder."""
    root = tmp_path_factory.mktemp("synthetic")
    cache, splits = root / "cache", root / "splits"
    make_synthetic_cache(cache, splits, SyntheticSpec())
    return cache, splits


@pytest.fixture(autouse=True)
def _fresh_log_messages():
    """Each test sees only its own log messages in ``tests.logtext.refusal_text``."""
    logtext.clear()
    yield


@pytest.fixture(scope="session")
def windowed_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same kind of cache with per-window sequences (1 to 4 windows per video, about 3), and its split folder."""
    root = tmp_path_factory.mktemp("windowed")
    cache, splits = root / "cache", root / "splits"
    make_synthetic_cache(cache, splits, SyntheticSpec(windows=3))
    return cache, splits
