"""Videos in, per-window features out: decode windows in worker processes, encode them in batches, pool them.

Shared by the extraction stage (:mod:`avzsl.pipeline.extract.shard`) and prediction on raw videos
(:mod:`avzsl.pipeline.predict`), so a video's feature at prediction time is exactly what extraction stores. A pure
library: it knows decoders, encoder transforms and torch, nothing of caches or runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from avzsl.extractors.decode import DecodeError, get_decoder
from avzsl.extractors.encoders.transforms import audio_window_tensor, video_window_tensor

# ----------------------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------------------
# encoding windows


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
