"""Error text of a refused command: its log file when it is kept, else the log records seen in this process.

A command refused after it set up logging removes its output folder when that holds only logs
(``avzsl.pipeline.cli.logs.discard_if_only_logs``), so tests that check the reason read the records instead.
"""

from __future__ import annotations

import logging
from pathlib import Path

_messages: list[str] = []


class _KeepMessages(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        _messages.append(record.getMessage())
        del _messages[:-200]


def install() -> None:
    """Keep the last log messages of every logger (called once from conftest)."""
    root = logging.getLogger()
    if not any(isinstance(h, _KeepMessages) for h in root.handlers):
        root.addHandler(_KeepMessages(level=logging.WARNING))


def refusal_text(log_file: Path) -> str:
    """``log_file``'s text when it exists, else the recent WARNING+ messages of this process."""
    log_file = Path(log_file)
    return log_file.read_text() if log_file.is_file() else "\n".join(_messages)


def clear() -> None:
    """Forget the kept messages (before each test)."""
    _messages.clear()
