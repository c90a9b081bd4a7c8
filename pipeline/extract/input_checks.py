"""Checks on input videos that the extraction records: file identity (size, mtime) and flags for suspicious videos.

- :func:`input_stat`: size and modification time of an input, stored in the shard's video records and the manifest,
  so a rerun can tell that a file changed after it was extracted (:func:`changed_inputs`) and extract its shard again.
- :func:`video_flags`: notes on a video that was extracted but deserves a look: frames that cover only part of the
  declared duration (timestamp gaps, a truncated or still-growing file), audio much shorter than the video, a file
  name that is not UTF-8 (its id is escaped).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from avzsl.extractors.decode.windows import WINDOW_S, count_windows
from avzsl.pipeline.core.filenames import escape_name, has_surrogates


def input_stat(path: str) -> dict[str, int | None]:
    """``{"size_bytes", "mtime_ns"}`` of ``path`` (``None`` when it cannot be read)."""
    try:
        st = os.stat(path)
    except OSError:
        return {"size_bytes": None, "mtime_ns": None}
    return {"size_bytes": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def video_flags(entry: Any, probe: Any, windows: int, schedule: str) -> list[str]:
    """Flags of an extracted video (empty when nothing is odd).

    Args:
        entry: the :class:`~avzsl.pipeline.data.video_list.VideoEntry` (``video_id``, ``path``).
        probe: its ``ProbeResult`` (``duration_s``, ``audio_duration_s``).
        windows: windows actually encoded.
        schedule: window schedule, for the number of planned windows.
    """
    flags = []
    planned = count_windows(probe, schedule)
    if windows < planned:
        flags.append(
            f"frames_missing: {planned - windows} of {planned} planned window(s) hold no video frame and were "
            f"skipped (declared duration {probe.duration_s:.2f} s; timestamp gap, truncated or still-growing file)"
        )
    audio_s, video_s = probe.audio_duration_s, probe.duration_s
    if audio_s is not None and video_s and audio_s < video_s - WINDOW_S:
        flags.append(
            f"short_audio: audio lasts {audio_s:.2f} s of the {video_s:.2f}-s video; windows after {audio_s:.2f} s "
            "have silent audio"
        )
    if has_surrogates(entry.path):
        flags.append(f"escaped_name: the file name is not UTF-8; its id {escape_name(entry.video_id)!r} writes "
                     "each undecodable byte as \\xNN (see docs/reliability.md)")
    return flags


def changed_inputs(records: Sequence[Mapping[str, Any]], paths: Mapping[str, str]) -> list[str]:
    """Descriptions of the inputs of a complete shard whose size or mtime differ from what was extracted.

    Args:
        records: the shard's video records (``video_id``, ``size_bytes``, ``mtime_ns``; older shards lack them and
            are never reported).
        paths: video id -> the file's path in this run.
    """
    changed = []
    for record in records:
        if record.get("size_bytes") is None and record.get("mtime_ns") is None:
            continue
        path = paths.get(record["video_id"])
        if path is None:
            continue
        now = input_stat(path)
        if now["size_bytes"] != record.get("size_bytes") or now["mtime_ns"] != record.get("mtime_ns"):
            changed.append(
                f"{escape_name(record['video_id'])} (size {record.get('size_bytes')} -> {now['size_bytes']} bytes, "
                f"mtime {record.get('mtime_ns')} -> {now['mtime_ns']} ns)"
            )
    return changed
