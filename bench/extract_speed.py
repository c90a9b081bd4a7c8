"""Extraction speed and memory: the pipeline against its own parts, measured in the same run.

Usage: python bench/extract_speed.py [--videos 4] [--seconds 10] [--workers 1] [--batch-size 4] [--device cpu]
                                     [--encoders selavi_vggsound,clip_clap,clip_clap_per_second] [--skip-rss]

Generates real H.264 + AAC videos (the demo world, 160x120, 30 fps), then, per encoder (random weights in the
official architectures), measures on the same windows:
- pure decode: decoding + that encoder's window transforms of every window (one process, no encoder);
- pure forward: the encoders on batches of ready-made window inputs (the transforms' output shapes);
- pipeline: `run_extraction` (probe, worker decoding overlapped with the forward pass, shard writing, index).
and prints videos/s, windows/s and pipeline/forward. Peak RSS of the whole SeLaVi extraction of one 10-s video and
of one 60-s video is measured in fresh subprocesses (main process and decode worker separately).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from avzsl.extractors.decode import get_decoder
from avzsl.extractors.encoders.registry import build_encoder
from avzsl.extractors.encoders.transforms import audio_window_tensor, video_window_tensor
from avzsl.pipeline.cache import ClassTable
from avzsl.pipeline.data.video_list import VideoEntry
from avzsl.pipeline.extract.config import ExtractConfig, RunOptions
from avzsl.pipeline.extract.stage import run_extraction
from avzsl.pipeline.extract.world import WorldInfo
from avzsl.pipeline.synth.demo_videos import COLOURS, FPS, render_frames, synth_sound, write_video


def make_video(path: Path, seconds: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    colour = list(COLOURS.values())[seed % len(COLOURS)]
    frames = render_frames(colour, round(seconds * FPS), rng)
    write_video(path, frames, synth_sound("siren", seconds, rng))
    return path


def extract(paths: list[Path], out: Path, workers: int, batch_size: int, device: str,
            encoder: str = "selavi_vggsound") -> float:
    """Run the real extraction stage over ``paths``; returns seconds (encoder building excluded)."""
    entries = [VideoEntry(f"c/{p.name}", str(p), "siren") for p in paths]
    encoders = build_encoder(encoder, random_weights=True, device=device)
    table = ClassTable(["siren"], ["siren"], np.ones((1, 4), np.float32), {"embedder": "bench"})
    started = time.perf_counter()
    run_extraction(
        entries,
        out,
        ExtractConfig(shard_size=len(entries)),
        RunOptions(batch_size=batch_size, workers=workers, probe_jobs=1, device=device, progress=False),
        encoders,
        table,
        WorldInfo(),
    )
    return time.perf_counter() - started


def measure(name: str, paths: list[Path], out: Path, args: argparse.Namespace) -> dict[str, float]:
    """Pure decode, pure forward and pipeline seconds of one encoder on ``paths`` (and the window count)."""
    encoders = build_encoder(name, random_weights=True, device=args.device)
    if hasattr(encoders, "window_transforms"):
        video_fn, audio_fn = encoders.window_transforms()
    else:
        video_fn, audio_fn = video_window_tensor, audio_window_tensor
    decoder = get_decoder("pyav")
    t0 = time.perf_counter()
    windows, sample = 0, None
    for path in paths:
        for window in decoder.iter_windows(path, "clean"):
            inputs = (video_fn(window.frames), audio_fn(window.audio))
            sample = sample or inputs
            windows += 1
    decode_s = time.perf_counter() - t0
    assert sample is not None, "no windows decoded"
    visual = sample[0].unsqueeze(0).expand(args.batch_size, *sample[0].shape).contiguous()
    audio = sample[1].unsqueeze(0).expand(args.batch_size, *sample[1].shape).contiguous()
    encoders.encode_visual(visual[:1])  # warm-up (allocator, kernels)
    encoders.encode_audio(audio[:1])
    t0 = time.perf_counter()
    for start in range(0, windows, args.batch_size):
        n = min(args.batch_size, windows - start)
        encoders.encode_visual(visual[:n])
        encoders.encode_audio(audio[:n])
    forward_s = time.perf_counter() - t0
    del encoders
    pipeline_s = extract(paths, out, args.workers, args.batch_size, args.device, name)
    return {"windows": windows, "pure decode": decode_s, "pure forward": forward_s, "pipeline": pipeline_s}


def rss_child(video: Path, out: Path, workers: int) -> None:
    extract([video], out, workers, 4, "cpu")
    main_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    sys.stdout.write(json.dumps({"main_mb": main_kb / 1024, "worker_mb": child_kb / 1024}) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument("--encoders", default="selavi_vggsound,clip_clap,clip_clap_per_second",
                        help="comma-separated registered encoders to measure")
    parser.add_argument("--rss-child", nargs=2, metavar=("VIDEO", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        rss_child(Path(args.rss_child[0]), Path(args.rss_child[1]), args.workers)
        return 0
    names = [n.strip() for n in args.encoders.split(",") if n.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        paths = [make_video(root / "videos" / f"{i:02d}.mp4", args.seconds, i) for i in range(args.videos)]
        gen_s = time.perf_counter() - t0
        results = {name: measure(name, paths, root / name, args) for name in names}
        windows = next(iter(results.values()))["windows"]

        rss = {}
        if not args.skip_rss:
            for seconds in (10.0, 60.0):
                video = make_video(root / f"rss_{int(seconds)}.mp4", seconds, 7)
                cmd = [sys.executable, __file__, "--workers", str(args.workers), "--rss-child", str(video)]
                cmd.append(str(root / f"rss_cache_{int(seconds)}"))
                done = subprocess.run(cmd, capture_output=True, text=True, check=True)
                rss[seconds] = json.loads(done.stdout.strip().splitlines()[-1])

    lines = [
        f"threads {torch.get_num_threads()}, workers {args.workers}, batch {args.batch_size}, device {args.device}; "
        f"{args.videos} videos x {args.seconds:g} s = {windows} windows (generated in {gen_s:.1f} s)",
        f"{'encoder':<22}{'measure':<14}{'seconds':>9}{'videos/s':>10}{'windows/s':>11}{'vs forward':>12}",
    ]
    for name, r in results.items():
        for label in ("pure decode", "pure forward", "pipeline"):
            secs = r[label]
            lines.append(f"{name:<22}{label:<14}{secs:>9.1f}{args.videos / secs:>10.3f}{windows / secs:>11.2f}"
                         f"{secs / r['pure forward']:>12.2f}")
    if rss:
        a, b = rss[10.0], rss[60.0]
        lines.append(f"{'peak RSS (MB), selavi':<22}{'10-s':>9}{'60-s':>10}{'60/10':>11}")
        for key in ("main_mb", "worker_mb"):
            lines.append(f"{key:<22}{a[key]:>9.0f}{b[key]:>10.0f}{b[key] / max(a[key], 1e-9):>11.2f}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
