"""Logging set-up for the command-line tools (library modules only create loggers)."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _LogFileHandler(logging.FileHandler):
    """A log file that a full disk or a read-only folder cannot turn into tracebacks on the console.

    The first failed write says so in one line on stderr and turns the file off; console logging goes on.
    """

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging API name
        exc = sys.exc_info()[1]
        if isinstance(exc, OSError):
            if not getattr(self, "_failed", False):
                self._failed = True
                sys.stderr.write(f"log file {self.baseFilename} cannot be written ({exc.strerror}); console only\n")
            return
        super().handleError(record)

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(self, "_failed", False):
            super().emit(record)


def setup_logging(log_file: Path | None = None, verbose: bool = False, rank: int | None = None) -> None:
    """Console logging (stderr) plus an optional log file; safe to call more than once (tests call CLIs in-process).

    Args:
        log_file: also append records to this file.
        verbose: DEBUG instead of INFO on the console.
        rank: when set, prefixed to every record (distributed extraction).
    """
    fmt = _FORMAT if rank is None else f"%(asctime)s %(levelname)s [rank {rank}] %(name)s: %(message)s"
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_avzsl", False):
            root.removeHandler(handler)
            handler.close()
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter(fmt, "%H:%M:%S"))
    console.setLevel(logging.DEBUG if verbose else logging.INFO)
    console._avzsl = True  # type: ignore[attr-defined]
    root.addHandler(console)
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        # backslashreplace: a file name that is not UTF-8 is logged with \xNN escapes instead of a logging error.
        file_handler = _LogFileHandler(log_file, encoding="utf-8", errors="backslashreplace")
        file_handler.setFormatter(logging.Formatter(fmt))
        file_handler.setLevel(logging.DEBUG)
        file_handler._avzsl = True  # type: ignore[attr-defined]
        root.addHandler(file_handler)
    root.setLevel(logging.DEBUG if (verbose or log_file) else logging.INFO)
    for noisy in ("h5py", "matplotlib", "PIL", "gensim", "smart_open"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def close_log_files() -> None:
    """Close and detach the log files :func:`setup_logging` opened (console logging goes on)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_avzsl", False) and isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
            handler.close()


def missing_root(folder: Path) -> Path | None:
    """The outermost ancestor of ``folder`` (itself included) that does not exist yet, or None if it exists."""
    folder = Path(folder).absolute()
    if folder.exists():
        return None
    root = folder
    while not root.parent.exists():
        root = root.parent
    return root


def discard_if_only_logs(created: Path | None) -> bool:
    """After failed usage: remove ``created`` (what :func:`missing_root` returned before the command made its output
    folder) when it holds nothing but ``*.log`` files.

    A refused command (bad argument, unknown class word, missing file) thus leaves no empty output folder with a
    lone ``train.log`` or ``logs/rank-0.log`` behind; a folder that existed before, or holds anything else, is kept.
    Returns whether anything was removed.
    """
    if created is None or not Path(created).is_dir():
        return False
    folder = Path(created)
    files = [p for p in folder.rglob("*") if not p.is_dir()]
    if any(p.suffix != ".log" for p in files):
        return False
    close_log_files()
    for path in files:
        path.unlink(missing_ok=True)
    for path in sorted((p for p in folder.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        path.rmdir()
    folder.rmdir()
    return True


def pick_device(name: str = "auto") -> torch.device:  # noqa: F821 - torch imported lazily
    """``auto`` -> CUDA when present, else CPU; otherwise the named device."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


# ----------------------------------------------------------------------------------------------------------
# progress: a bar in a terminal, periodic log lines otherwise

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
