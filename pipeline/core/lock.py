"""An exclusive lock on a directory, so two processes never write the same cache or run directory.

The lock is a file created with ``O_CREAT | O_EXCL`` that records the owner's pid, host and start time. A lock
whose owner is a dead process on this host is stale and is taken over (with a warning); a live owner makes the
second process fail at once with a message naming the directory and the owner.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import time
from pathlib import Path
from types import TracebackType

import psutil

_logger = logging.getLogger(__name__)

LOCK_NAME = ".avzsl.lock"
_RANK_LOCK_RE = re.compile(r"^\.avzsl\.lock\.rank(\d+)of(\d+)$")


class LockedError(RuntimeError):
    """The directory is locked by another live process."""


def _owner_alive(info: dict) -> bool:
    if info.get("host") != socket.gethostname():
        # Another machine's process cannot be checked from here: trust the lock.
        return True
    pid = int(info.get("pid", -1))
    if pid <= 0 or not psutil.pid_exists(pid):
        return False
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        return False
    # A recycled pid belongs to a process that started after the lock was written.
    return created <= float(info.get("started", 0)) + 1.0


def live_owner(path: Path) -> dict | None:
    """The owner recorded in lock file ``path`` when that process is alive, else None (no lock, or stale)."""
    try:
        info = json.loads(Path(path).read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        return None
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
                try:
                    info = json.loads(self.path.read_text() or "{}")
                except (OSError, json.JSONDecodeError):
                    info = {}
                if info and _owner_alive(info):
                    raise LockedError(
                        f"{self.directory}: this {self.what} is in use by process {info.get('pid')} on "
                        f"{info.get('host')} (lock {self.path}); wait for it to finish or stop it first"
                    ) from None
                if not info:
                    # A lock being written right now has no content yet: give its writer a moment.
                    time.sleep(0.2)
                    try:
                        info = json.loads(self.path.read_text() or "{}")
                    except (OSError, json.JSONDecodeError):
                        info = {}
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


def rank_lock_name(rank: int, world_size: int) -> str:
    """Name of the extraction lock of one rank: the world size is part of it (``.avzsl.lock.rank0of2``)."""
    return f".avzsl.lock.rank{rank}of{world_size}"


def _shared_shard(rank: int, world_size: int, other_rank: int, other_world: int, num_shards: int) -> int | None:
    """The first shard both ``rank of world_size`` and ``other_rank of other_world`` own (``i % w == r``)."""
    return next((i for i in range(num_shards) if i % world_size == rank and i % other_world == other_rank), None)


def overlapping_extraction(
    directory: Path, rank: int, world_size: int, num_shards: int, own: Path | None = None
) -> str | None:
    """A message naming a live extraction process in ``directory`` whose shards overlap ``rank of world_size``
    (any world size: rank 0 of 2 and rank 0 of 1 both own shard 0), or None. ``own``: this process's lock file."""
    directory = Path(directory)
    for lock in sorted(directory.glob(".avzsl.lock.rank*of*")):
        match = _RANK_LOCK_RE.match(lock.name)
        if match is None or (own is not None and lock == own):
            continue
        other_rank, other_world = int(match.group(1)), int(match.group(2))
        shared = _shared_shard(rank, world_size, other_rank, other_world, max(num_shards, 1))
        if shared is None:
            continue
        owner = live_owner(lock)
        if owner is not None:
            return (
                f"{directory}: this cache is in use by process {owner.get('pid')} on {owner.get('host')} "
                f"(rank {other_rank} of {other_world}, lock {lock}), which owns shards that rank {rank} of "
                f"{world_size} would also write (e.g. shard {shared}); wait for it to finish or stop it first"
            )
    return None


def check_shard_ownership(directory: Path, rank: int, world_size: int, num_shards: int) -> None:
    """Raise :class:`LockedError` when a live extraction in ``directory`` owns a shard this rank would write.

    Cheap (reads lock files only): ``avzsl-extract`` calls it before building the encoders. The binding check is
    :class:`ShardLock` when the lock is taken.
    """
    message = overlapping_extraction(directory, rank, world_size, num_shards)
    if message is not None:
        raise LockedError(message)


class ShardLock(DirectoryLock):
    """The extraction lock of one rank: refused while any live process of any world size owns one of its shards.

    The lock file is created first and the other ranks' locks are read after, so of two processes starting at once
    at least one sees the other (both may be refused; never both admitted).
    """

    def __init__(self, directory: Path, rank: int, world_size: int, num_shards: int) -> None:
        super().__init__(directory, "cache", name=rank_lock_name(rank, world_size))
        self.rank, self.world_size, self.num_shards = rank, world_size, num_shards

    def acquire(self) -> None:
        super().acquire()
        message = overlapping_extraction(self.directory, self.rank, self.world_size, self.num_shards, own=self.path)
        if message is not None:
            self.release()
            raise LockedError(message)
