"""An exclusive lock on a directory, so two processes never write the same cache or run directory.

The lock is a file created with ``O_CREAT | O_EXCL`` that records the owner's pid, host and start time. A lock
whose owner is a dead process on this host is stale and is taken over (with a warning); a live owner makes the
second process fail at once with a message naming the directory and the owner.

A lock file is read only when it is a regular file, opened without following a symlink and without blocking, and
only its first few KiB (:func:`~avzsl.pipeline.core.safe_read.read_bounded`): a FIFO or a symlink to ``/dev/zero``
under the lock's name is refused with its path (:class:`LockFileError`), never waited on or read without end, and
never removed (it is not avzsl's).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path
from types import TracebackType

import psutil

from avzsl.pipeline.core.safe_read import UnreadableFileError, read_bounded

_logger = logging.getLogger(__name__)

LOCK_NAME = ".avzsl.lock"
_MAX_LOCK_BYTES = 4096  # a lock avzsl writes is ~80 bytes of JSON


class LockedError(RuntimeError):
    """The directory is locked by another live process."""


class LockFileError(LockedError):
    """A file under a lock's name is not a lock avzsl wrote (a FIFO, a symlink, a device): the directory is refused."""


def read_lock(path: Path) -> dict:
    """The owner recorded in lock file ``path``; ``{}`` when it is absent, empty or not JSON (a stale or half-written
    lock).

    Raises:
        LockFileError: ``path`` is a FIFO, a symlink, a device or larger than any lock avzsl writes; the message
            names it.
    """
    try:
        text = read_bounded(Path(path), _MAX_LOCK_BYTES, "a lock file", follow_symlinks=False)
    except FileNotFoundError:
        return {}
    except UnreadableFileError as exc:
        raise LockFileError(str(exc)) from None
    try:
        info = json.loads(text or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return info if isinstance(info, dict) else {}


def _owner_alive(info: dict) -> bool:
    if info.get("host") != socket.gethostname():
        # Another machine's process cannot be checked from here: trust the lock.
        return True
    try:
        pid, started = int(info.get("pid", -1)), float(info.get("started", 0))
    except (TypeError, ValueError):  # not what avzsl writes: no live owner to wait for
        return False
    if pid <= 0 or not psutil.pid_exists(pid):
        return False
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        return False
    # A recycled pid belongs to a process that started after the lock was written.
    return created <= started + 1.0


def live_owner(path: Path) -> dict | None:
    """The owner recorded in lock file ``path`` when that process is alive, else None (no lock, or stale).

    Raises:
        LockFileError: ``path`` is not a lock avzsl wrote (:func:`read_lock`).
    """
    info = read_lock(path)
    return info if info and _owner_alive(info) else None


class DirectoryLock:
    """Context manager holding ``<directory>/.avzsl.lock`` for the lifetime of a stage.

    Args:
        directory: the directory to protect (created if missing).
        what: a word for messages ("cache", "run directory").
        name: lock file name (several independent locks can guard one directory, e.g. one per rank).
    """

    def __init__(self, directory: Path, what: str = "directory", name: str = LOCK_NAME) -> None:
        self.directory = Path(directory)
        self.path = self.directory / name
        self.what = what
        self._held = False

    def acquire(self) -> None:
        """Take the lock, recovering a stale one; raises :class:`LockedError` when a live process holds it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": psutil.Process().create_time()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info = read_lock(self.path)
                if info and _owner_alive(info):
                    raise LockedError(
                        f"{self.directory}: this {self.what} is in use by process {info.get('pid')} on "
                        f"{info.get('host')} (lock {self.path}); wait for it to finish or stop it first"
                    ) from None
                if not info:
                    # A lock being written right now has no content yet: give its writer a moment.
                    time.sleep(0.2)
                    info = read_lock(self.path)
                    if info and _owner_alive(info):
                        continue
                _logger.warning(
                    "recovering a stale lock on %s left by dead process %s", self.directory, info.get("pid")
                )
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self._held = True
            return
        raise LockedError(f"{self.directory}: could not take the lock {self.path}")

    def release(self) -> None:
        """Remove the lock if this process holds it."""
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False

    def __enter__(self) -> DirectoryLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
