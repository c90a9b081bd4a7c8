"""How the command-line tools report errors: one clear line naming the file and the reason, exit code 2."""

from __future__ import annotations

import errno
import logging
import os
import sys

from avzsl.pipeline.core.errors import CacheError, CheckpointCorruptError, UserError
from avzsl.pipeline.core.lock import LockedError
from avzsl.pipeline.data.splits import SplitError

_logger = logging.getLogger("avzsl")

# The project's own error types: bad input or state a user can fix. A ValueError, TypeError or KeyError raised
# elsewhere is a bug and keeps its traceback.
USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError,  # and its subclasses: InvalidValueError, PredictError, RunConfigError, InteropError, ReportError, ...
    CacheError,
    SplitError,
    LockedError,
    CheckpointCorruptError,
    OSError,  # only the errno values of NAMED_OS_ERRORS are reported in one line; report_user_error re-raises others
)

# Error types of modules that pull in numpy or torch. A CLI cannot import them before parsing its arguments (--help
# stays cheap), but an exception of a module that was never imported cannot occur: user_errors() adds the types of
# the modules already loaded when an exception is being matched.
_HEAVY_ERRORS = (
    ("avzsl.extractors.text.class_names", "OOVError"),
    ("avzsl.extractors.encoders.weights", "CheckpointError"),
)

# OS errors a user can act on, with what each line says; any other OSError is a bug or an environment problem and
# keeps its traceback.
NAMED_OS_ERRORS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file size limit hit",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "not found",
    errno.EISDIR: "is a folder, not a file",
    errno.ENOTDIR: "not a folder",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many levels of symbolic links",
}


def user_errors() -> tuple[type[BaseException], ...]:
    """The exception types a CLI reports as one line: :data:`USER_ERRORS` plus the error types of the heavy modules
    that are loaded (use it in the except clause itself: ``except user_errors() as exc``)."""
    loaded = tuple(getattr(sys.modules[m], name) for m, name in _HEAVY_ERRORS if m in sys.modules)
    return USER_ERRORS + loaded


def report_user_error(exc: BaseException) -> int:
    """Log ``exc`` as one error line (no traceback) and return exit code 2.

    An OSError whose errno is not in :data:`NAMED_OS_ERRORS` is re-raised: it is not something the line could
    explain, and its traceback is what a bug report needs.
    """
    if isinstance(exc, OSError):
        if exc.errno not in NAMED_OS_ERRORS:
            raise exc
        what = NAMED_OS_ERRORS[exc.errno]
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            message = (
                f"{what} while writing {exc.filename or ''}: free some space (or raise the limit) and run "
                "the same command again"
            )
        elif exc.errno == errno.EROFS:
            message = f"{what}: cannot write {exc.filename or exc}; choose a writable output folder"
        elif exc.errno in (errno.EACCES, errno.EPERM, errno.ENOENT) or exc.strerror == os.strerror(exc.errno):
            message = f"{what}: {exc.filename or exc}"
        else:  # raised by avzsl with its own words (e.g. "--videos-root is not a folder")
            message = f"{exc.strerror}: {exc.filename}" if exc.filename else str(exc.strerror)
    else:
        message = str(exc)
    _logger.error("%s", message)
    _logger.debug("details", exc_info=exc)
    return 2
