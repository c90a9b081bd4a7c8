"""File names that are not UTF-8: detect them and write them as ``\\xNN`` escapes in CSV and HDF5 ids (and back)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import Any

_ESCAPED_BYTE = re.compile(rb"\\x([0-9a-fA-F]{2})")


def has_surrogates(text: str) -> bool:
    """Whether ``text`` holds bytes of a file name that were not UTF-8 (decoded as lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def escape_name(text: str) -> str:
    """``text`` with every non-UTF-8 byte of a file name written as ``\\xNN``; UTF-8 text is returned unchanged."""
    if not has_surrogates(text):
        return text
    return os.fsencode(text).decode("utf-8", "backslashreplace")


def unescape_name(text: str) -> str:
    """Inverse of :func:`escape_name`: the file name (``str`` as ``os.fsdecode`` gives it) an escaped id came from."""
    raw = _ESCAPED_BYTE.sub(lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8"))
    return os.fsdecode(raw)


def escape_cells(rows: Iterable[Sequence[Any]]) -> Iterable[list[Any]]:
    """CSV rows with every string cell passed through :func:`escape_name`."""
    for row in rows:
        yield [escape_name(v) if isinstance(v, str) else v for v in row]
