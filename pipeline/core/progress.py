"""Progress of long work: a tqdm bar in a terminal, periodic log lines otherwise (CI logs, ``| tee``, Slurm)."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

# Seconds between two progress lines when stderr is not a terminal (CI logs, `scripts/demo.sh | tee`, Slurm).
PROGRESS_INTERVAL_S = float(os.environ.get("AVZSL_PROGRESS_INTERVAL", "30"))


def format_duration(seconds: float) -> str:
    """``42 s``, ``6 min 50 s``, ``2 h 05 min``."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


class LogProgress:
    """The part of tqdm's interface the stages use (``update``, ``set_postfix``, context manager), as log lines.

    One INFO line at most every ``interval`` seconds, and one at the end: ``extract: 46/96 videos (48%), 0.12
    videos/s, ETA 6 min 50 s``. Rate and ETA use the average since the start (not a short moving window): with
    shards that begin by probing and decode workers that run ahead, a recent-rate estimate swings by several times.
    """

    def __init__(
        self, total: int, desc: str, unit: str, interval: float | None = None, logger: logging.Logger | None = None
    ) -> None:
        self.total = int(total)
        self.desc = desc
        self.unit = unit
        self.n = 0
        self.interval = PROGRESS_INTERVAL_S if interval is None else float(interval)
        self.logger = logger or logging.getLogger("avzsl.progress")
        self.postfix = ""
        self.started = time.monotonic()
        self._last = self.started

    def line(self) -> str:
        """The current progress line."""
        elapsed = time.monotonic() - self.started
        rate = self.n / elapsed if elapsed > 0 else 0.0
        percent = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        text = f"{self.desc}: {self.n}/{self.total} {self.unit}s{percent}, {rate:.2f} {self.unit}s/s"
        if 0 < self.n < self.total and rate > 0:
            text += f", ETA {format_duration((self.total - self.n) / rate)}"
        elif self.n >= self.total:
            text += f", done in {format_duration(elapsed)}"
        return text + (f" [{self.postfix}]" if self.postfix else "")

    def update(self, n: int = 1) -> None:
        """``n`` more units done; logs a line when ``interval`` seconds passed since the last one."""
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.interval and self.n < self.total:
            self._last = now
            self.logger.info("%s", self.line())

    def set_postfix(self, **values: object) -> None:
        """Extra ``key=value`` pairs shown at the end of the next lines."""
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        """Log the final line (when anything was to be done)."""
        if self.total:
            self.logger.info("%s", self.line())
            self.total = 0

    def __enter__(self) -> LogProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if not any(exc):
            self.close()


def progress_bar(
    total: int, desc: str, unit: str, enabled: bool = True, position: int = 0, leave: bool = True
) -> Any:
    """A tqdm bar when stderr is a terminal, :class:`LogProgress` lines otherwise, or a silent tqdm when disabled.

    The bar uses the average rate since the start (``smoothing=0``) for its ETA, for the reason given in
    :class:`LogProgress`, and redraws at most twice a second.
    """
    from tqdm.auto import tqdm

    if not enabled:
        return tqdm(total=total, disable=True)
    if not _stderr_is_tty():
        return LogProgress(total, desc, unit)
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        smoothing=0,
        mininterval=0.5,
        miniters=1,
        position=position,
        dynamic_ncols=True,
        leave=leave,
    )


def _stderr_is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False
