"""Request time of ``avzsl-app`` on a loaded server against ``avzsl-predict`` for the same 10-s clip and run.

Usage: python bench/app_latency.py [--run demo_out/run] [--clip CLIP] [--repeat 3]

Starts ``avzsl-app --run RUN`` (models and encoders load once, at start; the start-up time is printed), sends the
clip ``--repeat`` times to ``POST /api/predict`` and times each answer at the client; then runs ``avzsl-predict --run
RUN --json CLIP`` ``--repeat`` times in fresh processes, as a user would. Both use the same classes (the demo's six
test-unseen names) and one decoding process. Without ``--clip`` a 10-s real-media clip (violin) is written to a
temporary folder. The table gives the median and best of each, the server's own compute time, and the ratio of the
medians (CLI / request).
"""

from __future__ import annotations

import argparse
import json
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

CLASSES = "violin,goat,whale,chimpanzee,caribou,rabbit"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post_clip(base: str, clip: Path) -> dict:
    """One multipart request with the clip; the JSON answer."""
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="classes"\r\n\r\n{CLASSES}\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{clip.name}"\r\n'
            "Content-Type: video/mp4\r\n\r\n").encode() + clip.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{base}/api/predict", data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())


def wait_for(base: str, proc: subprocess.Popen, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"avzsl-app exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/api/health", timeout=5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("avzsl-app did not answer") from None
            time.sleep(0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("demo_out/run"), help="run directory (avzsl-train)")
    parser.add_argument("--clip", type=Path, default=None, help="video to label (default: a 10-s demo clip)")
    parser.add_argument("--repeat", type=int, default=3, help="requests and CLI runs (median reported)")
    args = parser.parse_args()
    if not (args.run / "model.pt").is_file():
        raise SystemExit(f"{args.run}: no run there (run scripts/demo.sh first, or pass --run)")
    with tempfile.TemporaryDirectory() as tmp:
        clip = args.clip
        if clip is None:
            from avzsl.pipeline.synth.real_media import generate_real_videos  # only without --clip

            generate_real_videos(Path(tmp), 1, seconds=10.0, seed=11, classes=["violin"])
            clip = Path(tmp) / "violin" / "00.mp4"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        server = subprocess.Popen([sys.executable, "-m", "avzsl.pipeline.cli.app", "--run", str(args.run),
                                   "--port", str(port), "--device", "cpu"], stderr=subprocess.DEVNULL)
        try:
            wait_for(base, server)
            startup = time.perf_counter() - started
            request_times, compute = [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                answer = post_clip(base, clip)
                request_times.append(time.perf_counter() - t0)
                compute.append(answer["seconds"])
            windows = next(iter(answer["document"].values())).get("windows")
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=60)
        cli_times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "avzsl.pipeline.cli.predict", "--run", str(args.run), "--classes",
                            CLASSES, "--json", "--workers", "0", "--device", "cpu", str(clip)], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cli_times.append(time.perf_counter() - t0)
    print(f"clip {clip.name}: {windows} one-second windows; run {args.run}; server start-up {startup:.1f} s")
    print(f"{'':24} {'median s':>9} {'best s':>8}")
    print(f"{'avzsl-app request':24} {statistics.median(request_times):>9.2f} {min(request_times):>8.2f}")
    print(f"{'  (server compute)':24} {statistics.median(compute):>9.2f} {min(compute):>8.2f}")
    print(f"{'avzsl-predict (CLI)':24} {statistics.median(cli_times):>9.2f} {min(cli_times):>8.2f}")
    print(f"ratio CLI / request: {statistics.median(cli_times) / statistics.median(request_times):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
