"""Who am I among several extraction processes: rank, world size and local rank, from flags or the environment.

Order (engineering_lessons.md §9): explicit ``--rank/--world-size`` -> torchrun (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``) -> Slurm array (``SLURM_ARRAY_TASK_ID`` minus ``SLURM_ARRAY_TASK_MIN``, ``SLURM_ARRAY_TASK_COUNT``)
-> Slurm tasks (``SLURM_PROCID``, ``SLURM_NTASKS``, ``SLURM_LOCALID``) -> a single process. No process group is
created: extraction needs no collectives, each rank owns the shards with ``shard % world_size == rank``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from avzsl.pipeline.core.errors import InvalidValueError


@dataclass(frozen=True)
class WorldInfo:
    """This process's place among the extraction processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    source: str = "single process"

    def owns(self, shard_index: int) -> bool:
        """Static shard ownership: shard ``i`` belongs to rank ``i % world_size``."""
        return shard_index % self.world_size == self.rank


def _int(env: Mapping[str, str], key: str) -> int | None:
    value = env.get(key)
    return int(value) if value not in (None, "") else None


def resolve_world(
    rank: int | None = None, world_size: int | None = None, env: Mapping[str, str] | None = None
) -> WorldInfo:
    """Resolve the world from explicit values or the environment; validates ``0 <= rank < world_size``."""
    env = os.environ if env is None else env
    if rank is not None or world_size is not None:
        if rank is None or world_size is None:
            raise InvalidValueError("give both --rank and --world-size")
        info = WorldInfo(rank, world_size, _int(env, "LOCAL_RANK") or 0, "command line")
    elif _int(env, "WORLD_SIZE") is not None and _int(env, "RANK") is not None:
        info = WorldInfo(_int(env, "RANK"), _int(env, "WORLD_SIZE"), _int(env, "LOCAL_RANK") or 0, "torchrun")
    elif _int(env, "SLURM_ARRAY_TASK_COUNT") is not None and _int(env, "SLURM_ARRAY_TASK_ID") is not None:
        first = _int(env, "SLURM_ARRAY_TASK_MIN") or 0
        info = WorldInfo(
            _int(env, "SLURM_ARRAY_TASK_ID") - first, _int(env, "SLURM_ARRAY_TASK_COUNT"), 0, "slurm array"
        )
    elif _int(env, "SLURM_NTASKS") is not None and _int(env, "SLURM_PROCID") is not None:
        info = WorldInfo(
            _int(env, "SLURM_PROCID"), _int(env, "SLURM_NTASKS"), _int(env, "SLURM_LOCALID") or 0, "slurm tasks"
        )
    else:
        info = WorldInfo()
    if info.world_size < 1 or not 0 <= info.rank < info.world_size:
        raise InvalidValueError(f"invalid rank {info.rank} for world size {info.world_size} (from {info.source})")
    return info
