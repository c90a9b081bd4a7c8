"""Logging set-up for the command-line tools (library modules only create loggers)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

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
