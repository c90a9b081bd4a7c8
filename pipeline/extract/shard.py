"""One shard of an extraction: probe its videos, decode and encode them window by window, write the shard and its
stats. The shard is written atomically with a record of every input video, failures included."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from avzsl.extractors.decode.probe import probe_many
from avzsl.extractors.stream import WindowCountError, encode_window_stream, naming_file, pool_windows, stack_windows
from avzsl.pipeline.cache import IDENTITY_KEY, VideoFeatures, shard_path, write_shard, write_shard_stats
from avzsl.pipeline.core.faults import crash_point
from avzsl.pipeline.data.video_list import VideoEntry
from avzsl.pipeline.extract.config import ExtractConfig, RunOptions, ShardResult
from avzsl.pipeline.extract.input_checks import input_stat, video_flags
from avzsl.pipeline.extract.world import WorldInfo

_logger = logging.getLogger(__name__)


class ShardExtractor:
    """Probes, decodes and encodes the videos of shards, writing each shard atomically."""

    def __init__(
        self, cache_dir: Path, cfg: ExtractConfig, options: RunOptions, encoders: Any, world: WorldInfo,
        identity: str | None = None,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.identity = identity  # the extraction's identity digest, recorded on every shard it writes
        self.cfg = cfg
        self.options = options
        self.encoders = encoders
        self.world = world

    def _probe(self, entries: Sequence[VideoEntry]) -> list[Any]:
        return probe_many([e.path for e in entries], n_jobs=self.options.probe_jobs)

    def process(self, index: int, entries: Sequence[VideoEntry], progress: tqdm | None) -> ShardResult:
        """Extract one shard and write it; returns its stats."""
        started = time.perf_counter()
        probes = self._probe(entries)
        records: list[dict[str, Any]] = []
        for e, p in zip(entries, probes, strict=True):
            records.append(
                {
                    "video_id": e.video_id,
                    "class_name": e.class_name,
                    "path": e.path,
                    "status": p.status,
                    "reason": p.reason,
                    "duration_s": p.duration_s,
                    "fps": p.fps,
                    "frame_count": p.frame_count,
                    "width": p.width,
                    "height": p.height,
                    "has_audio": p.has_audio,
                    "windows": 0,
                    "shard": index,
                    "flags": "",
                    **input_stat(e.path),
                }
            )
        todo = [(k, e.path, probes[k]) for k, e in enumerate(entries) if probes[k].ok]
        if progress is not None:
            progress.update(len(entries) - len(todo))
        finished = 0

        def video_end(item: dict[str, Any]) -> None:
            nonlocal finished
            k = item["video"]
            if "done" not in item:
                records[k]["status"], records[k]["reason"] = item["status"], item["reason"]
                _logger.warning("%s: %s (%s)", entries[k].video_id, item["status"], item["reason"])
            finished += 1
            crash_point(f"extract-shard-{index}-video-{finished}")
            if progress is not None:
                progress.update(1)

        store, expected = encode_window_stream(
            todo,
            self.encoders,
            self.cfg.decoder,
            self.cfg.windows,
            self.options.workers,
            self.options.batch_size,
            on_video_end=video_end,
        )
        videos: list[VideoFeatures] = []
        for k, entry in enumerate(entries):
            if records[k]["status"] != "ok":
                continue
            try:
                audio_seq, visual_seq, window_sec = stack_windows(store.get(k, []), expected.get(k))
            except WindowCountError as exc:
                records[k]["status"] = "decode_error"
                records[k]["reason"] = naming_file(entry.path, str(exc))
                continue
            audio_mean, visual_mean = pool_windows(self.encoders.spec, audio_seq, visual_seq)
            item = VideoFeatures(entry.video_id, entry.class_name, audio_mean, visual_mean)
            if self.cfg.sequences:
                item.audio_seq, item.visual_seq = audio_seq, visual_seq
                item.window_sec = window_sec
            records[k]["windows"] = len(window_sec)
            videos.append(item)
        for k, entry in enumerate(entries):
            if records[k]["status"] == "ok":
                records[k]["flags"] = "; ".join(video_flags(entry, probes[k], records[k]["windows"], self.cfg.windows))
                if records[k]["flags"]:
                    _logger.warning("%s: %s", entry.video_id, records[k]["flags"])
        write_shard(
            shard_path(self.cache_dir, index),
            videos,
            {"shard_index": index, "encoder_spec_hash": self.encoders.spec.spec_hash(), "rank": self.world.rank,
             **({IDENTITY_KEY: self.identity} if self.identity is not None else {})},
            video_records=records,
        )
        seconds = time.perf_counter() - started
        failures = Counter(r["status"] for r in records if r["status"] != "ok")
        result = ShardResult(
            index, len(entries), len(videos), sum(r["windows"] for r in records), dict(failures), round(seconds, 3)
        )
        write_shard_stats(
            self.cache_dir, index, {**asdict(result), "videos_per_s": round(len(entries) / max(seconds, 1e-9), 3)}
        )
        return result
