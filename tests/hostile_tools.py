"""Helpers of the hostile-file tests: running a CLI in a real subprocess that can neither hang the suite nor eat the
machine's memory, and checking a one-line refusal."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from collections.abc import Callable

import pytest

MEMORY_LIMIT = 3 << 30
"""Address space a CLI under test may allocate (``RLIMIT_DATA``): a file read without bound fails fast instead of
filling the machine's memory."""


def limit_memory() -> None:
    """``preexec_fn``: cap the child's data segment at :data:`MEMORY_LIMIT`."""
    resource.setrlimit(resource.RLIMIT_DATA, (MEMORY_LIMIT, MEMORY_LIMIT))


def env(kill_at: str | None = None) -> dict[str, str]:
    """The environment of a child CLI (``AVZSL_KILL_AT`` only when given)."""
    out = {k: v for k, v in os.environ.items() if k != "AVZSL_KILL_AT"}
    if kill_at:
        out["AVZSL_KILL_AT"] = kill_at
    return out


def run_cli(
    module: str, args: list[str], timeout: float = 180, kill_at: str | None = None,
    preexec: Callable[[], None] | None = limit_memory,
) -> subprocess.CompletedProcess:
    """Run ``python -m module args``; a child still running after ``timeout`` seconds is killed and the test fails
    (a hang is the fault being tested for)."""
    cmd = [sys.executable, "-m", module, *args]
    try:
        return subprocess.run(cmd, env=env(kill_at), capture_output=True, text=True, timeout=timeout,
                              preexec_fn=preexec)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{module} {' '.join(args)} hung for {timeout} s (killed)\n{(exc.stderr or b'')[-2000:]!r}")


def error_lines(stderr: str) -> list[str]:
    """The ERROR lines of a CLI's log on stderr."""
    return [line for line in stderr.splitlines() if " ERROR " in line]


def assert_refused(done: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit code 2, no traceback, and exactly one error line holding every one of ``needles``; returns that line."""
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    errors = error_lines(done.stderr)
    assert len(errors) == 1, done.stderr[-3000:]
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]
