"""Which extraction process may write which shards: the rank lock of an extraction and its overlap check.

Rank ``r`` of ``w`` owns the shards ``i % w == r``. Ranks of different world sizes can own the same shard (rank 0 of 2
and rank 0 of 1 both own shard 0), so a rank is refused while a live process of any world size holds a rank lock
whose shards overlap its own (``docs/reliability.md``, "Locks").
"""

from __future__ import annotations

from pathlib import Path

from avzsl.pipeline.cache import rank_lock_name, rank_locks
from avzsl.pipeline.core.lock import DirectoryLock, LockedError, live_owner


def _shared_shard(rank: int, world_size: int, other_rank: int, other_world: int, num_shards: int) -> int | None:
    """The first shard both ``rank of world_size`` and ``other_rank of other_world`` own (``i % w == r``)."""
    return next((i for i in range(num_shards) if i % world_size == rank and i % other_world == other_rank), None)


def overlapping_extraction(
    directory: Path, rank: int, world_size: int, num_shards: int, own: Path | None = None
) -> str | None:
    """A message naming a live extraction process in ``directory`` whose shards overlap ``rank of world_size``
    (any world size: rank 0 of 2 and rank 0 of 1 both own shard 0), or None. ``own``: this process's lock file."""
    directory = Path(directory)
    for lock, other_rank, other_world in rank_locks(directory):
        if own is not None and lock == own:
            continue
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
