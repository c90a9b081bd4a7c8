"""Unlabeled inputs: a flat folder of videos is accepted (class unknown, recorded as such); avzsl-predict resolves
video files, folders and feature caches before anything loads."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from avzsl.pipeline.core import progress as logs
from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.data.video_list import UNLABELED, discover_folder
from avzsl.pipeline.predict.inputs import resolve_inputs


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_flat_folder_is_unlabeled(tmp_path: Path) -> None:
    for name in ("b.mp4", "a.MKV", "notes.txt"):
        _touch(tmp_path / name)
    entries = discover_folder(tmp_path)
    assert [(e.video_id, e.class_name) for e in entries] == [("a.MKV", UNLABELED), ("b.mp4", UNLABELED)]


def test_class_folders_win_over_loose_files(tmp_path: Path, caplog) -> None:
    _touch(tmp_path / "piano" / "a.mp4")
    _touch(tmp_path / "loose.mp4")
    with caplog.at_level(logging.WARNING):
        entries = discover_folder(tmp_path)
    assert [(e.video_id, e.class_name) for e in entries] == [("piano/a.mp4", "piano")]
    assert "no class folder and are ignored" in caplog.text


def test_folder_without_videos_is_refused(tmp_path: Path) -> None:
    _touch(tmp_path / "readme.txt")
    with pytest.raises(UserError, match="no video files found"):
        discover_folder(tmp_path)


def test_predict_inputs(tmp_path: Path) -> None:
    clip = _touch(tmp_path / "clip.mp4")
    folder = tmp_path / "folder"
    _touch(folder / "x" / "2.webm")
    _touch(folder / "1.mp4")
    _touch(folder / "skip.txt")
    cache = tmp_path / "cache"
    _touch(cache / "cache.json")
    inputs = resolve_inputs([clip, folder, cache])
    assert inputs.videos == [str(clip), str(folder / "1.mp4"), str(folder / "x" / "2.webm")]
    assert inputs.caches == [cache]
    # Missing paths are listed for the batch's error lines, not raised: the other inputs are still predicted.
    partial = resolve_inputs([clip, tmp_path / "gone1.mp4", tmp_path / "gone2.mp4"])
    assert partial.videos == [str(clip)]
    assert partial.missing == [str(tmp_path / "gone1.mp4"), str(tmp_path / "gone2.mp4")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="holds no video file"):
        resolve_inputs([tmp_path / "empty"])


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_is_log_lines_without_a_terminal(monkeypatch, caplog) -> None:
    monkeypatch.setattr(logs.sys, "stderr", _Stream(tty=False))
    bar = logs.progress_bar(4, "extract", "video")
    assert isinstance(bar, logs.LogProgress)
    bar.interval = 0.0
    with caplog.at_level(logging.INFO, logger="avzsl.progress"), bar:
        bar.update(1)
        bar.set_postfix(shard=0)
        bar.update(1)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("extract: 1/4 videos (25%), ") and "videos/s, ETA " in lines[0]
    assert lines[1].startswith("extract: 2/4 videos (50%)") and lines[1].endswith("[shard=0]")
    assert lines[-1].startswith("extract: 2/4") and len(lines) == 3  # the closing line
    monkeypatch.setattr(logs.sys, "stderr", _Stream(tty=True))
    terminal = logs.progress_bar(4, "extract", "video")
    from tqdm.std import tqdm

    assert isinstance(terminal, tqdm) and not isinstance(terminal, logs.LogProgress) and terminal.smoothing == 0
    terminal.close()


def test_format_duration() -> None:
    assert [logs.format_duration(s) for s in (5, 410, 7500)] == ["5 s", "6 min 50 s", "2 h 05 min"]
