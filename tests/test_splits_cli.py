"""avzsl-splits: a split folder for a cache, from class names or ratios, that avzsl-train reads."""

from __future__ import annotations

import csv
from pathlib import Path

from avzsl.pipeline.cache import load_features, read_class_table
from avzsl.pipeline.cli import splits as cli_splits
from avzsl.pipeline.data.splits import STAGE_SPLITS, load_splits, match_videos
from avzsl.pipeline.train.stage_data import build_protocol_data


def _cache_ids(cache: Path) -> dict[str, str]:
    with (cache / "index.csv").open(newline="") as f:
        return {row["video_id"]: row["class_name"] for row in csv.DictReader(f)}


def test_named_classes_follow_the_protocol(synthetic_cache, tmp_path: Path, capsys) -> None:
    cache, _ = synthetic_cache
    out = tmp_path / "splits"
    unseen, val = "class012,class013,CLASS014", "class008,class009"
    assert cli_splits.main(["--cache", str(cache), "--out", str(out), "--unseen", unseen, "--val-unseen", val]) == 0
    printed = capsys.readouterr().out
    assert "11 seen, 2 validation-unseen, 3 test-unseen" in printed
    splits = load_splits(out)
    classes = {name: set(splits[name].classes) for name in STAGE_SPLITS}
    test_unseen, val_unseen = {"class012", "class013", "class014"}, {"class008", "class009"}
    assert classes["stage_2_test_unseen"] == test_unseen
    assert classes["stage_1_val_unseen"] == val_unseen
    assert classes["stage_1_train"] == classes["stage_1_val_seen"]
    # Validation-unseen classes become seen in stage 2; test-unseen classes are never trained on.
    assert classes["stage_2_train"] == classes["stage_1_train"] | val_unseen == classes["stage_2_test_seen"]
    assert not test_unseen & (classes["stage_1_train"] | classes["stage_2_train"])
    ids = _cache_ids(cache)
    rows = {name: splits[name].videos for name in STAGE_SPLITS}
    for name in STAGE_SPLITS:
        match = match_videos(rows[name], list(ids))
        assert not match.missing and not match.ambiguous
        assert all(ids[vid] == label for vid, (_, label) in zip(match.video_ids, rows[name], strict=True))
    # Every labeled video is in exactly one of stage 2's train / test-seen / test-unseen lists.
    final = [r[0] for name in ("stage_2_train", "stage_2_test_seen", "stage_2_test_unseen") for r in rows[name]]
    assert sorted(final) == sorted(ids)
    stage1 = [r[0] for name in ("stage_1_train", "stage_1_val_seen", "stage_1_val_unseen") for r in rows[name]]
    assert sorted(stage1) == sorted(r[0] for r in rows["stage_2_train"])


def test_ratio_is_seeded_and_the_folder_loads_for_training(synthetic_cache, tmp_path: Path, capsys) -> None:
    cache, _ = synthetic_cache
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out, seed in ((a, "1"), (b, "1"), (c, "2")):
        args = ["--cache", str(cache), "--out", str(out), "--unseen-ratio", "0.25", "--seed", seed]
        assert cli_splits.main(args) == 0
    text = {p: "".join((p / f"{s}.csv").read_text() for s in STAGE_SPLITS) for p in (a, b, c)}
    assert text[a] == text[b] != text[c]
    assert len(load_splits(a)["stage_2_test_unseen"].classes) == 4  # round(0.25 * 16)
    assert len(load_splits(a)["stage_1_val_unseen"].classes) == 4  # as many as test-unseen by default
    # The training code's own data builder reads the folder against the cache: every listed video is found.
    data = build_protocol_data(load_splits(a), load_features(cache), read_class_table(cache))
    assert data.num_missing == 0 and not data.ambiguous
    assert len(data.train2.video_ids) + len(data.test.video_ids) == 16 * 20


def test_refusals(synthetic_cache, tmp_path: Path, caplog) -> None:
    cache, _ = synthetic_cache
    out = tmp_path / "s"
    base = ["--cache", str(cache), "--out", str(out)]
    assert cli_splits.main([*base, "--unseen", "class001,nosuch"]) == 2
    assert "not classes of the cache: ['nosuch']" in caplog.text
    assert cli_splits.main([*base, "--unseen", "class001", "--val-unseen", "class001"]) == 2
    assert "overlap" in caplog.text
    assert cli_splits.main(["--cache", str(tmp_path), "--out", str(out), "--unseen", "a"]) == 2
    assert "not an avzsl feature cache" in caplog.text
    assert not out.exists()
    assert cli_splits.main([*base, "--unseen", "class001"]) == 0
    assert cli_splits.main([*base, "--unseen", "class002"]) == 2
    assert "--overwrite" in caplog.text
    assert cli_splits.main([*base, "--unseen", "class002", "--overwrite"]) == 0
    assert load_splits(out)["stage_2_test_unseen"].classes == ("class002",)
