"""Packaging: the wheel installs the avzsl namespace with package data and working console scripts; lint is clean."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed in this environment (pip install avzsl[test])")
    done = subprocess.run([str(ruff), "check", str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:]


def test_wheel_installs_namespace_package_data_and_scripts(tmp_path: Path) -> None:
    # Build the wheel from the source tree (no network: the build backend is already installed).
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next((tmp_path / "dist").glob("avzsl-*.whl"))
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-compile", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    # Run from an unrelated folder with the wheel's files first on the path: imports must come from the wheel.
    env = {**os.environ, "PYTHONPATH": str(target)}
    probe = (
        "import avzsl.pipeline, avzsl.model, avzsl.extractors, avzsl.data_manifests as d;"
        "print(avzsl.pipeline.__file__);"
        "s = d.benchmark_splits('ucf'); print(len(s['stage_2_test_unseen'].videos));"
        # the real-media demo's pictures, recordings and attributions are package data too
        "from avzsl.pipeline.synth.real_media import attributions, media_dir;"
        "from avzsl.pipeline.synth.real_catalogue import media_files;"
        "assert all((media_dir() / r['file']).is_file() for r in attributions());"
        "assert set(media_files()) <= {r['file'] for r in attributions()}; print(media_dir());"
        # avzsl-app's page is package data
        "from importlib import resources; static = resources.files('avzsl.pipeline.app') / 'static';"
        "assert all((static / n).is_file() for n in ('index.html', 'app.js', 'app.css'))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    first, count, media = done.stdout.split()
    assert first.startswith(str(target)) and count == "1267" and media.startswith(str(target))
    for script in ("avzsl-extract", "avzsl-train", "avzsl-evaluate", "avzsl-demo", "avzsl-app"):
        path = target / "bin" / script
        assert path.is_file(), f"{script} missing from the wheel's scripts"
        helped = subprocess.run([str(path), "--help"], capture_output=True, text=True, cwd=tmp_path, env=env)
        assert helped.returncode == 0 and "usage:" in helped.stdout, helped.stderr[-2000:]
