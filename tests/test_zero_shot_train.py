"""The frozen zero-shot method and the paper's method through avzsl-train on a real clip_clap cache (slow: 30 real
videos are decoded and encoded with tiny random CLIP/CLAP towers in the official layouts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from avzsl.pipeline.cli import extract as cli_extract
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.data.splits import write_protocol_splits
from tests.foundation_fixtures import tiny_clap_checkpoint, tiny_clip_checkpoint
from tests.media import write_av

CLASSES = {
    "red_bell": ((230, 20, 20), 300),
    "green_drum": ((20, 230, 20), 500),
    "blue_siren": ((20, 20, 230), 700),
    "yellow_whistle": ((230, 230, 20), 900),
    "white_rain": ((240, 240, 240), 1100),
    "black_horn": ((10, 10, 10), 1300),
}


@pytest.fixture(scope="module")
def cache_and_splits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("zs_train")
    class_videos: dict[str, list[str]] = {}
    for name, (color, freq) in CLASSES.items():
        for k in range(5):
            rel = f"{name}/v{k}.mp4"
            (root / "videos" / name).mkdir(parents=True, exist_ok=True)
            write_av(root / "videos" / rel, duration_s=1.2, size=(64, 48), color=color, freq_hz=freq + 20 * k)
            class_videos.setdefault(name, []).append(rel)
    clip, clap = tiny_clip_checkpoint(root / "clip"), tiny_clap_checkpoint(root / "clap")
    cache = root / "cache"
    args = ["--videos", str(root / "videos"), "--out", str(cache), "--encoder", "clip_clap", "--clip-checkpoint",
            str(clip), "--clap-checkpoint", str(clap), "--workers", "1", "--batch-size", "8", "--no-progress"]
    assert cli_extract.main(args) == 0
    names = list(CLASSES)
    splits = write_protocol_splits(root / "splits", class_videos, names[:3], names[3:4], names[4:], seed=0,
                                   val_fraction=0.4, test_fraction=0.4)
    return cache, splits


@pytest.mark.slow
@pytest.mark.parametrize("method", ["zero_shot", "coordinate_generalize"])
def test_methods_train_and_evaluate_on_a_clip_clap_cache(cache_and_splits, tmp_path: Path, method: str) -> None:
    cache, splits = cache_and_splits
    run = tmp_path / method
    args = ["--cache", str(cache), "--splits", str(splits), "--out", str(run), "--method", method,
            "--epochs", "2", "--batch-size", "8", "--device", "cpu"]
    assert cli_train.main(args) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"S", "U", "H", "ZSL"} <= set(metrics)
    assert all(0.0 <= float(metrics[k]) <= 100.0 for k in ("S", "U", "H", "ZSL"))


@pytest.mark.slow
def test_methods_sweep_on_a_clip_clap_cache_gives_a_row_per_method(cache_and_splits, tmp_path: Path) -> None:
    """avzsl-sweep --methods with the frozen scorer and two trained methods: the text-tower cache feeds all three."""
    from avzsl.pipeline.cli import sweep as cli_sweep

    cache, splits = cache_and_splits
    out = tmp_path / "sweep"
    argv = ["--cache", str(cache), "--splits", str(splits), "--out", str(out), "--methods",
            "zero_shot,coordinate_generalize,avca", "--seeds", "0,1", "--", "--epochs", "2", "--batch-size", "8",
            "--device", "cpu"]
    assert cli_sweep.main(argv) == 0
    table = json.loads((out / "methods.json").read_text())
    rows = {r["method"]: r for r in table["rows"]}
    assert list(rows) == ["zero_shot", "coordinate_generalize", "avca"]
    assert table["skipped_methods"] == {}
    for name, row in rows.items():
        assert row["status"] == "ok" and row["n"] == 2, name
        assert all(0.0 <= row[k]["mean"] <= 100.0 for k in ("S", "U", "H", "ZSL")), name
        assert f"| {name} | " in (out / "methods.md").read_text()
    # The frozen scorer has nothing to train: stage 1 is one evaluation "epoch" and both seeds score the same.
    assert rows["zero_shot"]["H"]["std"] == 0.0
    first = json.loads((out / "method-zero_shot-seed0" / "metrics.json").read_text())
    assert first["epoch"] == 1 and first["method"] == "zero_shot"
