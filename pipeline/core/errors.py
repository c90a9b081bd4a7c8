"""The project's base error types: bad input or state a user can fix (the CLIs report them in one line, exit 2)."""

from __future__ import annotations

# This module must stay cheap to import (no torch, h5py, numpy): every CLI imports it before parsing its arguments,
# so `--help` answers at once. Error classes of heavy modules are therefore defined here and re-exported there.


class UserError(RuntimeError):
    """Bad input or state that the user can fix; the message says what and where."""


class InvalidValueError(UserError, ValueError):
    """A value the user gave (an option, a configuration entry, a file's field) that is unknown, out of range or
    contradicts another. Also a ``ValueError``, which is what library callers validating arguments expect."""


class CacheError(RuntimeError):
    """A cache directory or one of its files is missing, incomplete or inconsistent (re-exported by ``cache``)."""


class CheckpointCorruptError(RuntimeError):
    """A checkpoint file exists but cannot be read (re-exported by ``checkpoint``)."""
