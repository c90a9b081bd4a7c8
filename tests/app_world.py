"""A tiny real-media world for the avzsl-app tests: a run trained on packaged-encoder features of real clips, tiny
CLIP/CLAP towers, and a running ``avzsl-app`` server (a real subprocess on a free loopback port)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from avzsl.pipeline.cli import extract as cli_extract
from avzsl.pipeline.cli import train as cli_train
from avzsl.pipeline.data.splits import write_protocol_splits
from avzsl.pipeline.synth.real_media import generate_real_videos
from tests.foundation_fixtures import tiny_clap_checkpoint, tiny_clip_checkpoint
from tests.media import write_text_as_mp4

SEEN, VAL_UNSEEN, TEST_UNSEEN = ["dog", "cello", "cow"], ["bassoon"], ["violin", "goat"]
MAX_UPLOAD_MB = 1.0
START_TIMEOUT_S = 240


def build_world(root: Path) -> dict[str, Path]:
    """Clips (1 s for training, one 3-s clip to label), a packaged-encoder run, towers, a videos folder with an
    escaping symlink, a text file named .mp4 and a too-large "mp4"."""
    # 4 clips of a trained class give one to validation and one to the test; one of a test-unseen class is enough.
    videos = generate_real_videos(root / "videos", 4, seconds=1.0, classes=SEEN + VAL_UNSEEN, held_out_clips=0)
    videos.update(generate_real_videos(root / "videos", 1, seconds=1.0, classes=TEST_UNSEEN))
    splits = write_protocol_splits(root / "splits", videos, SEEN, VAL_UNSEEN, TEST_UNSEEN, val_fraction=0.25,
                                   test_fraction=0.25)
    cache, run = root / "cache", root / "run"
    assert cli_extract.main(["--videos", str(root / "videos"), "--out", str(cache), "--encoder", "effnet_lite0_aisfx",
                             "--no-progress", "--workers", "0"]) == 0
    assert cli_train.main(["--cache", str(cache), "--splits", str(splits), "--out", str(run), "--epochs", "2",
                           "--batch-size", "16", "--batches-per-epoch", "2", "--device", "cpu"]) == 0
    generate_real_videos(root / "label", 1, seconds=3.0, seed=7, classes=["violin"])
    clip = root / "label" / "violin" / "00.mp4"
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(clip.read_bytes())
    (root / "videos" / "escape.mp4").symlink_to(outside / "secret.mp4")
    (root / "videos" / "inside.mp4").symlink_to(root / "videos" / "violin" / "00.mp4")
    (root / "upload").mkdir()
    notes = write_text_as_mp4(root / "upload" / "notes.mp4")
    big = root / "upload" / "big.mp4"
    big.write_bytes(clip.read_bytes()[:64] + os.urandom(int(MAX_UPLOAD_MB * 2**20) + 4096))  # an mp4 header
    (root / "server-tmp").mkdir()
    return {"root": root, "run": run, "clip": clip, "notes": notes, "big": big, "videos": root / "videos",
            "server_tmp": root / "server-tmp",
            "clip_ckpt": tiny_clip_checkpoint(root / "clip"), "clap_ckpt": tiny_clap_checkpoint(root / "clap")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_app(world: dict[str, Path], log: Path) -> Iterator[str]:
    """``avzsl-app`` on the world's run and towers; yields its base URL; stopped with SIGINT (as Ctrl-C)."""
    port = free_port()
    argv = [sys.executable, "-m", "avzsl.pipeline.cli.app", "--run", str(world["run"]), "--zero-shot",
            "--clip-checkpoint", str(world["clip_ckpt"]), "--clap-checkpoint", str(world["clap_ckpt"]),
            "--videos-root", str(world["videos"]), "--port", str(port), "--max-upload-mb", str(MAX_UPLOAD_MB),
            "--device", "cpu"]
    env = {**os.environ, "TMPDIR": str(world["server_tmp"])}  # the server's temporary files, to check they go
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert proc.poll() is None, f"avzsl-app exited {proc.returncode}: {log.read_text()[-3000:]}"
            try:
                if get_json(f"{base}/api/health")[1] == {"ok": True}:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"avzsl-app did not answer in {START_TIMEOUT_S} s"
            time.sleep(0.5)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def get_json(url: str) -> tuple[int, dict]:
    """(status, JSON body) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def post_form(url: str, fields: list[tuple[str, str]], files: list[tuple[str, str, bytes]],
              timeout: float = 300) -> tuple[int, dict]:
    """(status, JSON body) of a multipart POST: ``fields`` (name, value), ``files`` (name, filename, bytes)."""
    boundary = "avzsl-test-boundary-7f3a"
    parts: list[bytes] = []
    for name, value in fields:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, filename, data in files:
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n")
        parts.append(head.encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
