"""Peak memory of extraction and prediction, and where it goes.

Usage: python bench/memory.py [--videos 16] [--seconds 3] [--batch-sizes 1,4,16,32] [--workers 2] [--work DIR]

Generates demo-world videos (160x120, 30 fps, H.264 + AAC, like the issue's 96 demo clips), then measures, each
in a fresh interpreter so nothing carries over:

- parts: resident memory added by each step of an extraction in one process -- the interpreter, ``import
  torch``, the avzsl extraction modules, the bundled GloVe word vectors (embedding the classes), the SeLaVi
  encoders (random weights), and one encoder forward of B windows per batch size (activations; the figure is
  the peak above the resident memory before the call, so it is what a batch of that size costs);
- extract B: ``avzsl-extract`` (the CLI in-process: ``cli_extract.main``) over the videos at each batch size
  with ``--workers W`` decode workers: the main process's peak RSS, each decode worker's peak RSS and peak USS
  (memory only that worker holds: a forked worker shares the parent's pages until it writes them, so its RSS
  counts them again), and main + workers' USS, the memory the run really needs;
- predict: ``avzsl-predict`` (``cli_predict.main``) on one video of a demo run, with its defaults and with
  ``--workers 0``, and its parts (run model, word vectors, encoders, decode + forward).

Peaks are the kernel's (``VmHWM`` of /proc/self/status, reset between steps by writing 5 to
/proc/self/clear_refs; ``resource.getrusage`` where that is not available); a worker's peak is sampled every
20 ms with psutil (or /proc without psutil, RSS only). All figures in MiB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
_STATUS = Path("/proc/self/status")

try:  # optional: worker USS (memory only that process holds) needs psutil
    import psutil
except ImportError:  # pragma: no cover - psutil is a test dependency; /proc gives RSS without it
    psutil = None


# ------------------------------------------------------------------------------------------------ measuring


def _status_kb(field: str, status: Path = _STATUS) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+) kB", status.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def rss_mb() -> float:
    """Current resident set size of this process."""
    kb = _status_kb("VmRSS")
    if kb is None:  # no /proc: the peak is the best available figure
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return kb / 1024


def peak_mb() -> float:
    """Peak resident set size of this process since start or since the last :func:`reset_peak`."""
    kb = _status_kb("VmHWM")
    return kb / 1024 if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> bool:
    """Reset the kernel's peak RSS (``VmHWM``) to the current RSS; False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# A worker that exits between listing and reading raises one of these.
_GONE: tuple[type[BaseException], ...] = (OSError,) if psutil is None else (OSError, psutil.Error)


class ChildSampler:
    """Samples the RSS (and with psutil the USS) of this process's descendants every ``interval`` seconds.

    ``peaks``: pid -> {"rss": MiB, "uss": MiB or None}, the largest value seen per process.
    """

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peaks: dict[int, dict[str, float | None]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> ChildSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _children(self) -> list[int]:
        if psutil is not None:
            return [c.pid for c in psutil.Process().children(recursive=True)]
        pids = []
        for task in Path(f"/proc/{os.getpid()}/task").iterdir():
            text = (task / "children").read_text().split()
            pids += [int(p) for p in text]
        return pids

    def _sample(self, pid: int) -> tuple[float, float | None]:
        if psutil is not None:
            info = psutil.Process(pid).memory_full_info()  # reads smaps: USS = private pages
            return info.rss / MIB, info.uss / MIB
        kb = _status_kb("VmRSS", Path(f"/proc/{pid}/status"))
        return (kb or 0) / 1024, None

    def _loop(self) -> None:
        while not self._stop.is_set():
            for pid in self._children():
                try:
                    rss, uss = self._sample(pid)
                except _GONE:
                    continue  # the worker exited between listing and reading
                peak = self.peaks.setdefault(pid, {"rss": 0.0, "uss": None})
                peak["rss"] = max(peak["rss"] or 0.0, rss)
                if uss is not None:
                    peak["uss"] = max(peak["uss"] or 0.0, uss)
            self._stop.wait(self.interval)

    def summary(self) -> dict[str, Any]:
        """Number of workers seen, the largest worker RSS and USS, and the sum of their USS."""
        rss = [p["rss"] for p in self.peaks.values()]
        uss = [p["uss"] for p in self.peaks.values() if p["uss"] is not None]
        return {
            "workers": len(self.peaks),
            "worker_rss": max(rss, default=0.0),
            "worker_uss": max(uss, default=None) if uss else None,
            "workers_uss_sum": sum(uss) if uss else None,
        }


# ------------------------------------------------------------------------------------------------ scenarios


def child_parts(batch_sizes: list[int]) -> dict[str, Any]:
    """Resident memory added by each step of an extraction, in one process."""
    out: dict[str, Any] = {"interpreter": rss_mb()}
    before = rss_mb()
    import torch

    out["import torch"] = rss_mb() - before
    before = rss_mb()
    from avzsl.extractors.encoders.registry import build_encoder
    from avzsl.extractors.text.class_names import ClassNameEmbedder
    from avzsl.pipeline import extract  # noqa: F401 - its import cost is measured

    out["avzsl modules"] = rss_mb() - before
    before = rss_mb()
    reset_peak()
    ClassNameEmbedder(None).embed(["red_siren", "blue_drum", "green_bird"])
    out["word vectors (GloVe 6B 50-d)"] = rss_mb() - before
    out["word vectors peak"] = peak_mb() - before
    before = rss_mb()
    encoders = build_encoder("selavi_vggsound", random_weights=True, device="cpu")
    out["encoders (SeLaVi, random)"] = rss_mb() - before
    generator = torch.Generator().manual_seed(0)
    for b in batch_sizes:
        v = torch.rand((b, 3, 30, 112, 112), generator=generator)
        a = torch.rand((b, 1, 257, 99), generator=generator)
        encoders.encode_visual(v[:1]), encoders.encode_audio(a[:1])  # warm-up: first-call allocations
        before = rss_mb()
        reset_peak()
        encoders.encode_visual(v)
        encoders.encode_audio(a)
        out[f"forward B={b}"] = peak_mb() - before
        del v, a
    out["total resident"] = rss_mb()
    return out


def child_extract(videos: Path, out: Path, batch_size: int, workers: int) -> dict[str, Any]:
    """Peak memory of ``avzsl-extract`` (in-process) at one batch size."""
    from avzsl.pipeline.cli import extract as cli_extract

    argv = ["--videos", str(videos), "--out", str(out), "--random-weights", "--batch-size", str(batch_size),
            "--workers", str(workers), "--shard-size", "32", "--no-progress"]
    started = time.perf_counter()
    with ChildSampler() as sampler:
        code = cli_extract.main(argv)
    return {"code": code, "main_peak": peak_mb(), "seconds": time.perf_counter() - started, **sampler.summary()}


def child_predict(run: Path, video: Path, workers: int | None) -> dict[str, Any]:
    """Peak memory of ``avzsl-predict`` (in-process) on one video."""
    from avzsl.pipeline.cli import predict as cli_predict

    argv = [str(video), "--run", str(run), "--random-weights", "--classes", "red_siren,blue_drum,green_bird",
            "--json"]
    if workers is not None:
        argv += ["--workers", str(workers)]
    devnull = open(os.devnull, "w")  # noqa: SIM115 - kept open for the call only
    stdout, sys.stdout = sys.stdout, devnull
    try:
        with ChildSampler() as sampler:
            code = cli_predict.main(argv)
    finally:
        sys.stdout = stdout
        devnull.close()
    return {"code": code, "main_peak": peak_mb(), **sampler.summary()}


def child_predict_parts(run: Path, video: Path) -> dict[str, Any]:
    """What each step of a one-video prediction adds (API calls in the order avzsl-predict makes them)."""
    out: dict[str, Any] = {}
    before = rss_mb()
    import torch  # noqa: F401 - its import cost is measured

    from avzsl.pipeline.predict.predictor import Predictor

    out["import torch + avzsl"] = rss_mb() - before
    before = rss_mb()
    predictor = Predictor(run, random_weights=True)
    candidates = predictor.candidates(["red_siren", "blue_drum", "green_bird"])
    out["run model + word vectors"] = rss_mb() - before
    before = rss_mb()
    predictor.encoders  # noqa: B018 - builds them
    out["encoders"] = rss_mb() - before
    before = rss_mb()
    reset_peak()
    predictor.predict([video], candidates, workers=0)
    out["decode + forward (peak)"] = peak_mb() - before
    out["total resident"] = rss_mb()
    return out


# ------------------------------------------------------------------------------------------------ driver


def run_child(args: list[str]) -> dict[str, Any]:
    """Run this script in a fresh interpreter with ``--child ...``; returns its JSON line."""
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"child {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def make_videos(root: Path, count: int, seconds: float) -> Path:
    """``count`` demo-world videos (160x120) of ``seconds`` in ``root/videos/<class>/``; kept between runs."""
    import numpy as np

    from avzsl.pipeline.synth.demo_videos import COLOURS, FPS, demo_classes, render_frames, synth_sound, write_video

    videos = root / "videos"
    classes = demo_classes().all
    for k in range(count):
        name = classes[k % len(classes)]
        path = videos / name / f"{k:03d}.mp4"
        if path.is_file():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        colour, sound = name.split("_")
        rng = np.random.default_rng(k)
        write_video(path, render_frames(COLOURS[colour], round(seconds * FPS), rng), synth_sound(sound, seconds, rng))
    return videos


def make_run(root: Path) -> Path:
    """A small demo run (avzsl-demo: random weights, 5 videos per class, 2 epochs) to predict with."""
    demo = root / "demo"
    if not (demo / "run" / "model.pt").is_file():
        command = [str(Path(sys.executable).parent / "avzsl-demo"), "--world", "procedural", "--out", str(demo),
                   "--videos-per-class", "5",
                   "--epochs", "2", "--workers", "0"]
        subprocess.run(command, check=True, capture_output=True, text=True)
    return demo / "run"


class _Lines(list):
    """The output table, written line by line as the measurements come (a long run shows what it has)."""

    def append(self, line: str) -> None:
        super().append(line)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def __iadd__(self, lines):  # noqa: ANN001, ANN204 - list protocol
        for line in lines:
            self.append(line)
        return self


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:8.0f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=16, help="videos extracted per run")
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each video")
    parser.add_argument("--batch-sizes", default="1,4,16,32", help="comma-separated --batch-size values")
    parser.add_argument("--workers", type=int, default=2, help="--workers of the extraction runs")
    parser.add_argument("--work", type=Path, default=None, help="folder for videos and runs (default: temporary)")
    parser.add_argument("--skip-predict", action="store_true", help="no prediction measurements")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "parts":
            result = child_parts([int(b) for b in rest])
        elif kind == "extract":
            result = child_extract(Path(rest[0]), Path(rest[1]), int(rest[2]), int(rest[3]))
        elif kind == "predict":
            result = child_predict(Path(rest[0]), Path(rest[1]), None if rest[2] == "default" else int(rest[2]))
        else:
            result = child_predict_parts(Path(rest[0]), Path(rest[1]))
        sys.stdout.write(json.dumps(result) + "\n")
        return 0

    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    tmp = tempfile.TemporaryDirectory(prefix="avzsl-memory-") if args.work is None else None
    root = Path(tmp.name) if tmp is not None else args.work
    root.mkdir(parents=True, exist_ok=True)
    videos = make_videos(root, args.videos, args.seconds)
    lines = _Lines()
    lines += [f"peak memory (MiB); {args.videos} videos of {args.seconds:g} s, 160x120; psutil "
             f"{'yes' if psutil is not None else 'no (worker USS not measured)'}; "
             f"peak reset {'yes' if reset_peak() else 'no'}", ""]

    parts = run_child(["parts", *map(str, batch_sizes)])
    lines.append("where it goes (one process, resident MiB added by each step)")
    for key, value in parts.items():
        lines.append(f"  {key:<34} {value:8.0f}")
    lines.append("")

    lines.append(f"avzsl-extract, --workers {args.workers} (main: peak RSS; worker: peak RSS / peak USS of one; "
                 "total: main + every worker's USS)")
    ratio = f"x B={batch_sizes[0]}"
    lines.append(f"  {'batch':>5} {'main':>8} {'worker':>8} {'w. USS':>8} {'total':>8} {ratio:>8} {'s':>6}")
    first = None
    for b in batch_sizes:
        r = run_child(["extract", str(videos), str(root / f"cache-b{b}-w{args.workers}"), str(b), str(args.workers)])
        if r["code"] != 0:
            raise RuntimeError(f"extraction at batch {b} exited {r['code']}")
        total = r["main_peak"] + (r["workers_uss_sum"] or 0.0)
        first = first or total
        lines.append(f"  {b:>5} {_fmt(r['main_peak'])} {_fmt(r['worker_rss'])} {_fmt(r['worker_uss'])} "
                     f"{_fmt(total)} {total / first:8.2f} {r['seconds']:6.1f}")
    lines.append("")

    if not args.skip_predict:
        run = make_run(root)
        video = sorted(videos.rglob("*.mp4"))[0]
        lines.append("avzsl-predict, one video (main: peak RSS; worker: peak RSS / USS; total: main + worker USS)")
        for label, workers in (("defaults", "default"), ("--workers 0", "0")):
            r = run_child(["predict", str(run), str(video), workers])
            total = r["main_peak"] + (r["workers_uss_sum"] or 0.0)
            lines.append(f"  {label:<12} main {_fmt(r['main_peak'])}  worker {_fmt(r['worker_rss'])} / "
                         f"{_fmt(r['worker_uss'])}  total {_fmt(total)}  ({r['workers']} worker(s))")
        parts = run_child(["predict-parts", str(run), str(video)])
        lines.append("  where it goes (resident MiB added by each step)")
        for key, value in parts.items():
            lines.append(f"    {key:<32} {value:8.0f}")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
