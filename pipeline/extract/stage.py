"""Extraction stage: raw videos -> SeLaVi audio/visual features in HDF5 shards, resumable and distributable.

The unit of work is a shard: a fixed slice of the sorted video list (``shard_size`` videos). For each shard the
owner rank (``shard % world_size == rank``) probes its videos, decodes them window by window in worker processes
while the main process runs the encoders on batches of windows from several videos, and writes the shard
atomically (``.tmp`` + rename, ``complete`` set last) with a record of every input video, failures included. Its
stats file follows. A rerun skips complete shards and deletes the temporary leftovers of the shards it owns. When
every shard is complete, the finishing process builds the index, the class table and the manifest/failure lists.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info
from tqdm.auto import tqdm

from avzsl.pipeline.cache import (
    CACHE_INFO,
    ClassTable,
    VideoFeatures,
    finalize,
    list_shards,
    mark_finalized,
    read_cache_info,
    read_video_records,
    shard_is_complete,
    shard_path,
    write_cache_info,
    write_class_table,
    write_shard,
)
from avzsl.pipeline.core.atomic import atomic_write_csv, atomic_write_text
from avzsl.pipeline.core.errors import UserError
from avzsl.pipeline.core.faults import crash_point
from avzsl.pipeline.core.lock import DirectoryLock, LockedError, ShardLock
from avzsl.pipeline.core.progress import progress_bar
from avzsl.pipeline.data.video_list import VideoEntry
from avzsl.pipeline.extract.input_checks import changed_inputs, input_stat, video_flags
from avzsl.pipeline.extract.world import WorldInfo

_logger = logging.getLogger(__name__)

CODE_VERSION = "0.1.0"
MANIFEST_CSV = "manifest.csv"
FAILURES_CSV = "failures.csv"
RECORD_FIELDS = (
    "video_id",
    "class_name",
    "path",
    "status",
    "reason",
    "duration_s",
    "fps",
    "frame_count",
    "width",
    "height",
    "has_audio",
    "windows",
    "shard",
    "flags",
    "size_bytes",
    "mtime_ns",
)


@dataclass
class ExtractConfig:
    """Settings that determine the features (hashed: a cache refuses a rerun with different ones).

    Attributes:
        encoder: registry name of the encoder pair.
        decoder: ``pyav`` or ``decord``.
        windows: window schedule, ``clean`` (1-s stride) or ``avca`` (the reference formula).
        shard_size: videos per shard.
        sequences: also store per-window features with window times.
        seed: seed of random encoder weights (``--random-weights`` only).
        precision: encoder forward precision, ``fp32`` (official features), ``bf16`` or ``fp16`` autocast.
    """

    encoder: str = "selavi_vggsound"
    decoder: str = "pyav"
    windows: str = "clean"
    shard_size: int = 256
    sequences: bool = True
    seed: int = 0
    precision: str = "fp32"

    def __post_init__(self) -> None:
        from avzsl.extractors.encoders.precision import check_precision

        check_precision(self.precision)
        if self.decoder not in ("pyav", "decord"):
            raise ValueError(f"decoder must be 'pyav' or 'decord', not {self.decoder!r}")
        if self.windows not in ("clean", "avca"):
            raise ValueError(f"windows must be 'clean' or 'avca', not {self.windows!r}")
        if self.shard_size < 1:
            raise ValueError("shard size must be >= 1")


@dataclass
class RunOptions:
    """Settings that change speed, not features."""

    batch_size: int = 16
    workers: int = 2
    probe_jobs: int = 4
    device: str = "cpu"
    overwrite: bool = False
    progress: bool = True


@dataclass
class ShardResult:
    """What one shard produced."""

    shard: int
    videos: int
    ok: int
    windows: int
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    skipped: bool = False


def list_hash(entries: Sequence[VideoEntry]) -> str:
    """Fingerprint of the input list (ids and classes, not absolute paths: the videos folder may move)."""
    digest = hashlib.sha256()
    for e in entries:
        digest.update(f"{e.video_id}\t{e.class_name}\n".encode())
    return digest.hexdigest()[:16]


def plan_shards(entries: Sequence[VideoEntry], shard_size: int) -> list[list[VideoEntry]]:
    """Fixed slices of the id-sorted video list: shard ``i`` holds the same videos on every rerun and rank."""
    ordered = sorted(entries, key=lambda e: e.video_id)
    return [ordered[i : i + shard_size] for i in range(0, len(ordered), shard_size)]


def cache_identity(cfg: ExtractConfig, entries: Sequence[VideoEntry], encoders: Any, embedder_info: dict) -> dict:
    """The ``cache.json`` content of this extraction (identical on every rank)."""
    weights = {"sha256": encoders.weights_sha256, "random_seed": cfg.seed if encoders.random_weights else None}
    if getattr(encoders, "provenance", None) is not None:  # multi-tower sets (CLIP/CLAP) record each tower
        weights["towers"] = encoders.provenance
    return {
        "encoder": {"name": cfg.encoder, "spec": encoders.spec.to_dict(), "spec_hash": encoders.spec.spec_hash()},
        "weights": weights,
        "extraction": asdict(cfg),
        "videos": {"count": len(entries), "list_hash": list_hash(entries)},
        "class_embedder": embedder_info,
        "code_version": CODE_VERSION,
    }


def check_or_write_identity(
    cache_dir: Path, identity: dict, overwrite: bool, world: WorldInfo, device: str = "cpu"
) -> None:
    """Refuse to mix two different extractions in one cache unless ``overwrite`` (then start afresh).

    A cache written before ``precision`` existed ran at bf16 on CUDA and fp32 elsewhere; it matches a rerun at that
    precision on the same kind of device.
    """
    from avzsl.extractors.encoders.precision import legacy_precision

    path = cache_dir / CACHE_INFO
    if path.is_file():
        old = read_cache_info(cache_dir)
        old.pop("schema_version", None)
        old.pop("finalized", None)
        old.pop("content", None)
        if isinstance(old.get("extraction"), dict) and "precision" not in old["extraction"]:
            old["extraction"]["precision"] = legacy_precision(device)
        if old != identity:
            changed = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
            if not overwrite:
                raise UserError(
                    f"{cache_dir} holds features of a different extraction (differs in: {', '.join(changed)}); "
                    "use another --out or pass --overwrite to replace them"
                )
            _logger.warning("--overwrite: removing the shards this rank owns in %s (changed: %s)", cache_dir, changed)
            for shard in list_shards(cache_dir):
                index = int(shard.name[6:-3])
                if world.owns(index):
                    shard.unlink()
                    shard.with_name(shard.name[:-3] + ".stats.json").unlink(missing_ok=True)
            for name in ("index.h5", "index.csv", "classes.h5", MANIFEST_CSV, FAILURES_CSV):
                (cache_dir / name).unlink(missing_ok=True)
        else:
            return
    write_cache_info(cache_dir, identity)


# --------------------------------------------------------------------------------------------------------------
# decoding in worker processes


class WindowStream(IterableDataset):
    """Yields encoder-ready windows of a list of videos, one dict per window plus one end marker per video.

    Items: ``{"video": k, "window": i, "start": s, "end": e, "v": (3,30,112,112), "a": (1,257,99)}`` for each
    window, then ``{"video": k, "done": n_windows}`` or ``{"video": k, "status": ..., "reason": ...}`` on failure.
    With several DataLoader workers, worker ``w`` handles videos ``k % num_workers == w``; only one window per
    worker is held at a time (memory does not grow with video length).
    """

    def __init__(
        self, items: Sequence[tuple[int, str, Any]], decoder: str, schedule: str, transforms: Any = None
    ) -> None:
        self.items = list(items)
        self.decoder = decoder
        self.schedule = schedule
        # (video_fn, audio_fn), picklable; None: the SeLaVi transforms. Other encoders (CLIP/CLAP) bring theirs.
        self.transforms = transforms

    def __iter__(self) -> Iterator[dict[str, Any]]:
        from avzsl.extractors.decode import DecodeError, get_decoder
        from avzsl.extractors.encoders.transforms import audio_window_tensor, video_window_tensor

        video_fn, audio_fn = self.transforms or (video_window_tensor, audio_window_tensor)
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        decoder = get_decoder(self.decoder)
        for position, (k, path, probe) in enumerate(self.items):
            if position % workers != worker:
                continue
            count = 0
            try:
                for window in decoder.iter_windows(path, self.schedule, probe=probe):
                    yield {
                        "video": k,
                        "window": window.index,
                        "start": float(window.start_s),
                        "end": float(window.end_s),
                        "v": video_fn(window.frames),
                        "a": audio_fn(window.audio),
                    }
                    count += 1
            except DecodeError as exc:
                yield {"video": k, "status": "decode_error", "reason": naming_file(path, exc.reason)}
                continue
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - one bad video must not stop the shard; recorded with reason
                reason = naming_file(path, f"{type(exc).__name__}: {exc}")
                yield {"video": k, "status": "decode_error", "reason": reason}
                continue
            if count == 0:
                yield {"video": k, "status": "too_short", "reason": naming_file(path, "no window holds a video frame")}
            else:
                yield {"video": k, "done": count}


def naming_file(path: str, reason: str) -> str:
    """``reason`` prefixed with ``path`` unless it names it already (every recorded reason names its file)."""
    return reason if path in reason else f"{path}: {reason}"


CPU_BATCH_SIZE = 4
"""Default windows per encoder forward on CPU: each SeLaVi window costs ~200 MiB of activations there (3.1 GiB at 16;
docs/memory.md), while a larger batch gains little speed on CPU."""
CUDA_BATCH_SIZE = 16
"""Default windows per encoder forward on a GPU."""


def default_batch_size(device: str | torch.device) -> int:
    """``--batch-size`` when not given: :data:`CUDA_BATCH_SIZE` on a CUDA device, :data:`CPU_BATCH_SIZE` otherwise.

    The batch size changes speed and memory, never the features (it is not part of the cache identity).
    """
    return CUDA_BATCH_SIZE if torch.device(device).type == "cuda" else CPU_BATCH_SIZE


PREFETCH_WINDOWS = 2
"""Windows each decode worker may have ready ahead of the encoder (DataLoader ``prefetch_factor``): enough to keep
the forward pass fed, few enough that decoded windows (4.6 MB each as SeLaVi inputs) never pile up."""


def max_windows_in_flight(batch_size: int, workers: int) -> int:
    """The most decoded windows held at once during extraction: the batch being filled plus each worker's prefetch.

    With ``workers`` processes the DataLoader has at most ``workers * PREFETCH_WINDOWS`` requests outstanding and a
    worker decodes a window only when asked, so neither the video length nor the shard size adds to it; decoding
    inline (``workers=0``) decodes a window only when the batch asks for it.
    """
    return batch_size + max(workers, 0) * PREFETCH_WINDOWS


def _worker_init(_: int) -> None:
    # Each decode worker is single-threaded: the cores belong to the encoder forward in the main process.
    torch.set_num_threads(1)


def iterate_windows(stream: WindowStream, workers: int) -> Iterator[dict[str, Any]]:
    """Run the stream in ``workers`` processes (0: inline)."""
    if workers <= 0:
        yield from stream
        return
    loader = DataLoader(
        stream,
        batch_size=None,
        num_workers=workers,
        prefetch_factor=PREFETCH_WINDOWS,
        worker_init_fn=_worker_init,
        persistent_workers=False,
    )
    yield from loader


# --------------------------------------------------------------------------------------------------------------
# encoding windows (shared by the shard extractor and avzsl-predict's encode_videos)


class WindowCountError(ValueError):
    """A video's encoded windows do not add up to the count its decoder reported."""


def _encode_batch(encoders: Any, batch: list[dict[str, Any]], store: dict[int, list[tuple]]) -> None:
    visual = encoders.encode_visual(torch.stack([item["v"] for item in batch]))
    audio = encoders.encode_audio(torch.stack([item["a"] for item in batch]))
    for item, v, a in zip(batch, visual.numpy(), audio.numpy(), strict=True):
        store.setdefault(item["video"], []).append((item["window"], item["start"], item["end"], a, v))


def encode_window_stream(
    todo: Sequence[tuple[int, str, Any]],
    encoders: Any,
    decoder: str,
    schedule: str,
    workers: int,
    batch_size: int,
    on_video_end: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[int, list[tuple]], dict[int, int]]:
    """Decode the windows of ``todo`` videos in ``workers`` processes and encode them in batches of windows.

    Args:
        todo: ``(k, path, probe)`` per video (``k``: the caller's key).
        encoders: ``encode_visual`` ``(B,3,30,112,112) -> (B,512)`` and ``encode_audio`` ``(B,1,257,99) -> (B,512)``.
        decoder: ``pyav`` or ``decord``.
        schedule: window schedule, ``clean`` or ``avca``.
        workers: decoding worker processes (0: inline).
        batch_size: windows per encoder forward (windows of several videos share a batch).
        on_video_end: called with each video's end marker, ``{"video": k, "done": n}`` or
            ``{"video": k, "status": ..., "reason": ...}``, as soon as it arrives.

    Returns:
        ``store``: k -> list of ``(window_index, start_s, end_s, audio (512,), visual (512,))`` in arrival order;
        ``expected``: k -> number of windows the decoder produced, for every video that finished without error.
    """
    store: dict[int, list[tuple]] = {}
    expected: dict[int, int] = {}
    batch: list[dict[str, Any]] = []
    transforms = encoders.window_transforms() if hasattr(encoders, "window_transforms") else None
    for item in iterate_windows(WindowStream(todo, decoder, schedule, transforms), workers):
        if "v" in item:
            batch.append(item)
            if len(batch) >= batch_size:
                _encode_batch(encoders, batch, store)
                batch = []
            continue
        if "done" in item:
            expected[item["video"]] = int(item["done"])
        if on_video_end is not None:
            on_video_end(item)
    if batch:
        _encode_batch(encoders, batch, store)
    return store, expected


def stack_windows(windows: list[tuple], expected: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One video's window features in window order: audio ``(T, 512)``, visual ``(T, 512)``, ``[start, end]``
    seconds ``(T, 2)``, all float32. The per-video feature is the mean over T (axis 0).

    Raises:
        WindowCountError: ``len(windows) != expected`` (``None``: the video did not finish decoding).
    """
    windows = sorted(windows, key=lambda w: w[0])
    if len(windows) != (expected if expected is not None else -1):
        raise WindowCountError(f"decoded {len(windows)} windows, expected {expected}")
    audio_seq = np.stack([w[3] for w in windows]).astype(np.float32)
    visual_seq = np.stack([w[4] for w in windows]).astype(np.float32)
    window_sec = np.array([[w[1], w[2]] for w in windows], dtype=np.float32)
    return audio_seq, visual_seq, window_sec


def pool_windows(spec: Any, audio_seq: np.ndarray, visual_seq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-video features from ``(T, D)`` window features: the mean, or for a spec with
    ``video_pooling == "middle"`` the middle window's visual feature (the ClipClap single middle frame)."""
    if getattr(spec, "video_pooling", "") == "middle":
        return audio_seq.mean(0), visual_seq[len(visual_seq) // 2].copy()
    return audio_seq.mean(0), visual_seq.mean(0)


# --------------------------------------------------------------------------------------------------------------
# one shard


class ShardExtractor:
    """Probes, decodes and encodes the videos of shards, writing each shard atomically."""

    def __init__(
        self, cache_dir: Path, cfg: ExtractConfig, options: RunOptions, encoders: Any, world: WorldInfo
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.cfg = cfg
        self.options = options
        self.encoders = encoders
        self.world = world

    def _probe(self, entries: Sequence[VideoEntry]) -> list[Any]:
        from avzsl.extractors.decode.probe import probe_many

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
            {"shard_index": index, "encoder_spec_hash": self.encoders.spec.spec_hash(), "rank": self.world.rank},
            video_records=records,
        )
        seconds = time.perf_counter() - started
        failures = Counter(r["status"] for r in records if r["status"] != "ok")
        result = ShardResult(
            index, len(entries), len(videos), sum(r["windows"] for r in records), dict(failures), round(seconds, 3)
        )
        stats = {**asdict(result), "videos_per_s": round(len(entries) / max(seconds, 1e-9), 3)}
        atomic_write_text(stats_path(self.cache_dir, index), json.dumps(stats, indent=2, sort_keys=True) + "\n")
        return result


def stats_path(cache_dir: Path, index: int) -> Path:
    """Stats file of shard ``index`` (written after the shard itself)."""
    path = shard_path(cache_dir, index)
    return path.with_name(path.name[: -len(".h5")] + ".stats.json")


# --------------------------------------------------------------------------------------------------------------
# finalize


def all_shards_complete(cache_dir: Path, num_shards: int) -> bool:
    """Whether every planned shard exists and is complete."""
    return all(shard_is_complete(shard_path(cache_dir, i)) for i in range(num_shards))


def finalize_cache(cache_dir: Path, num_shards: int, class_table: ClassTable) -> dict[str, Any] | None:
    """Build the index, class table, manifest and failure list once all shards are complete.

    Several ranks may finish at once: a finalize lock lets one of them do it; the others return None.
    """
    cache_dir = Path(cache_dir)
    if not all_shards_complete(cache_dir, num_shards):
        return None
    try:
        lock = DirectoryLock(cache_dir, "cache (finalize)", name=".avzsl.finalize.lock")
        lock.acquire()
    except LockedError:
        _logger.info("another process is finalizing %s", cache_dir)
        return None
    try:
        crash_point("extract-finalize")
        _remove_finalize_leftovers(cache_dir)
        records = [r for i in range(num_shards) for r in read_video_records(shard_path(cache_dir, i))]
        write_class_table(cache_dir, class_table)
        total = finalize(cache_dir, mark=False)
        _write_records_csv(cache_dir / MANIFEST_CSV, records)
        _write_records_csv(cache_dir / FAILURES_CSV, [r for r in records if r["status"] != "ok"])
        mark_finalized(cache_dir)  # last: a reader trusts the cache only from here on
        counts = Counter(r["status"] for r in records)
        return {"videos": len(records), "indexed": total, "statuses": dict(counts)}
    finally:
        lock.release()


def _remove_finalize_leftovers(cache_dir: Path) -> None:
    """Delete temporary files a killed finalize left (caller holds the finalize lock).

    Only finalize writes the index, class table and record lists, so their temporaries are all stale here. Ranks
    starting up write ``cache.json`` only when it is absent or different, which cannot be the case while every shard
    is complete and being finalized, so its temporaries are stale too.
    """
    names = ("index.h5", "index.csv", "classes.h5", MANIFEST_CSV, FAILURES_CSV, CACHE_INFO)
    for path in cache_dir.glob("*.tmp"):
        if any(path.name == f"{n}.tmp" or path.name.startswith(f".{n}.") for n in names):
            _logger.info("removing %s left by an interrupted finalize", path.name)
            path.unlink(missing_ok=True)


def _write_records_csv(path: Path, records: Sequence[dict[str, Any]]) -> None:
    atomic_write_csv(path, RECORD_FIELDS, ([r.get(k) for k in RECORD_FIELDS] for r in records))


# --------------------------------------------------------------------------------------------------------------
# the whole stage


@dataclass
class ExtractionSummary:
    """What a run of the extraction stage did."""

    shards_total: int
    shards_done: list[ShardResult]
    shards_skipped: int
    finalized: dict[str, Any] | None
    seconds: float


def run_extraction(
    entries: Sequence[VideoEntry],
    cache_dir: Path,
    cfg: ExtractConfig,
    options: RunOptions,
    encoders: Any,
    class_table: ClassTable,
    world: WorldInfo,
) -> ExtractionSummary:
    """Extract the shards this rank owns, then finalize the cache if every shard is complete.

    Args:
        entries: every input video (all ranks must see the same list).
        cache_dir: output cache.
        cfg: feature-determining settings.
        options: speed settings.
        encoders: loaded encoders (``encode_visual``/``encode_audio``, ``spec``, ``weights_sha256``).
        class_table: class-name embeddings of every class in ``entries``.
        world: rank and world size.
    """
    started = time.perf_counter()
    cache_dir = Path(cache_dir)
    shards = plan_shards(entries, cfg.shard_size)
    identity = cache_identity(cfg, entries, encoders, class_table.provenance)
    lock = ShardLock(cache_dir, world.rank, world.world_size, len(shards))
    with lock:
        check_or_write_identity(cache_dir, identity, options.overwrite, world, options.device)
        owned = [i for i in range(len(shards)) if world.owns(i)]
        for i in owned:
            # Only this rank writes these names, so its leftovers can be removed without touching other ranks'.
            tmp = shard_path(cache_dir, i).with_name(shard_path(cache_dir, i).name + ".tmp")
            if tmp.exists():
                _logger.info("removing %s left by an interrupted run", tmp.name)
                tmp.unlink()
        # verify: every dataset against its checksum, so a bit flip since the shard was written is redone too.
        todo = [i for i in owned if not shard_is_complete(shard_path(cache_dir, i), verify=True)]
        for i in todo:
            if shard_path(cache_dir, i).exists():
                _logger.warning("%s is truncated or corrupt: extracting it again", shard_path(cache_dir, i).name)
        paths = {e.video_id: e.path for e in entries}
        for i in owned:
            changed = [] if i in todo else changed_inputs(read_video_records(shard_path(cache_dir, i)), paths)
            if changed:
                _logger.warning(
                    "%s: %d input video(s) changed since they were extracted (%s): extracting it again",
                    shard_path(cache_dir, i).name,
                    len(changed),
                    "; ".join(changed[:3]),
                )
                todo.append(i)
        todo.sort()
        for i in owned:
            if i not in todo and not stats_path(cache_dir, i).is_file():
                # Killed between the shard's rename and its stats: the shard is complete, the stats are derived.
                records = read_video_records(shard_path(cache_dir, i))
                failures = Counter(r["status"] for r in records if r["status"] != "ok")
                stats = {"shard": i, "videos": len(records), "failures": dict(failures), "recovered": True}
                atomic_write_text(stats_path(cache_dir, i), json.dumps(stats, indent=2, sort_keys=True) + "\n")
        skipped = len(owned) - len(todo)
        if skipped:
            _logger.info("rank %d: %d of %d owned shard(s) already complete, skipped", world.rank, skipped, len(owned))
        extractor = ShardExtractor(cache_dir, cfg, options, encoders, world)
        total_videos = sum(len(shards[i]) for i in todo)
        results = []
        with progress_bar(
            total_videos,
            f"extract rank {world.rank}" if world.world_size > 1 else "extract",
            "video",
            enabled=options.progress,
            position=world.local_rank,
        ) as progress:
            for i in todo:
                result = extractor.process(i, shards[i], progress)
                results.append(result)
                progress.set_postfix(shard=i, failed=sum(sum(r.failures.values()) for r in results))
                _logger.info(
                    "shard %d: %d/%d videos ok, %d windows, %.1f s (%.2f videos/s)",
                    i,
                    result.ok,
                    result.videos,
                    result.windows,
                    result.seconds,
                    result.videos / max(result.seconds, 1e-9),
                )
    finalized = finalize_cache(cache_dir, len(shards), class_table)
    if finalized is None:
        _logger.info("rank %d done; the cache is finalized when the last shard completes", world.rank)
    return ExtractionSummary(len(shards), results, skipped, finalized, time.perf_counter() - started)
