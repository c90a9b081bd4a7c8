"""Named crash points for crash-and-resume tests.

Setting ``AVZSL_KILL_AT=<point>`` makes the process SIGKILL itself when it reaches that point, so tests can stop a
real subprocess at an exact place (between writing a temporary file and renaming it, after an epoch's checkpoint,
...) and check that rerunning the same command ends with the same result. Unset, it costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

ENV = "AVZSL_KILL_AT"


def crash_point(name: str) -> None:
    """SIGKILL this process if ``AVZSL_KILL_AT`` names ``name`` (comma-separated names allowed)."""
    wanted = os.environ.get(ENV)
    if wanted and name in wanted.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
