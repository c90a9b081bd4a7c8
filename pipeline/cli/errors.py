"""How the command-line tools report errors: one clear line naming the file and the reason, exit code 2."""

from __future__ import annotations

import errno
import logging

from avzsl.pipeline.core.errors import CacheError, CheckpointCorruptError, UserError
from avzsl.pipeline.core.lock import LockedError
from avzsl.pipeline.data.splits import SplitError

_logger = logging.getLogger("avzsl")

# ValueError covers invalid option combinations raised by config validation; OSError covers missing files,
# permissions and a full disk (reported without a traceback, the cache stays consistent through atomic writes).
USER_ERRORS: tuple[type[BaseException], ...] = (
    UserError,
    CacheError,
    SplitError,
    LockedError,
    CheckpointCorruptError,
    ValueError,
    OSError,
)


def report_user_error(exc: BaseException) -> int:
    """Log ``exc`` as one error line (no traceback) and return exit code 2."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        what = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded", errno.EFBIG: "file size limit hit"}
        message = (
            f"{what[exc.errno]} while writing {exc.filename or ''}: free some space (or raise the limit) and run "
            "the same command again"
        )
    elif isinstance(exc, OSError) and exc.errno == errno.EROFS:
        message = f"read-only file system: cannot write {exc.filename or exc}; choose a writable output folder"
    elif isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM):
        message = f"permission denied: {exc.filename or exc}"
    elif isinstance(exc, OSError) and exc.errno == errno.ENOENT:
        message = f"not found: {exc.filename or exc}"
    else:
        message = str(exc)
    _logger.error("%s", message)
    _logger.debug("details", exc_info=exc)
    return 2
