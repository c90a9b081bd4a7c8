"""Logging set-up for the command-line tools (library modules only create loggers)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter(fmt))
        file_handler.setLevel(logging.DEBUG)
        file_handler._avzsl = True  # type: ignore[attr-defined]
        root.addHandler(file_handler)
    root.setLevel(logging.DEBUG if (verbose or log_file) else logging.INFO)
    for noisy in ("h5py", "matplotlib", "PIL", "gensim", "smart_open"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def pick_device(name: str = "auto") -> torch.device:  # noqa: F821 - torch imported lazily
    """``auto`` -> CUDA when present, else CPU; otherwise the named device."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
