"""The names the extractors' registries accept, importable without torch, numpy or av (command-line choices).

The decoder registry (``extractors/decode/__init__.py``) registers exactly :data:`DECODERS`, and the window schedules
(``extractors/decode/windows.py``) are :data:`SCHEDULES`; ``tests/test_decode.py`` checks both, so a CLI that offers
these names as ``choices`` offers what the registries take, without importing them before its arguments are parsed.
"""

DECODERS = ("pyav", "decord")
"""Registered window decoders: PyAV (default) and decord (optional extra)."""

SCHEDULES = ("clean", "avca")
"""Window schedules: ``clean`` (every full 1-s window) and ``avca`` (the released AVCA features' layout)."""
