"""Cost of the content checksums on a VGGSound-size cache: reading features with and without verification.

Usage: python bench/checksum_cost.py [--videos 94000] [--dim 512] [--shard-size 256] [--repeat 3] [--keep DIR]

A synthetic cache of ``--videos`` videos x (audio, visual) x ``--dim`` float32 (VGGSound-GZSL: ~94k videos, 385 MB
of mean features) is written with the real cache writer (``make_synthetic_cache``: shards of ``--shard-size``
videos, class table, finalize). The table gives the best of ``--repeat`` warm-cache timings of

- ``load_features`` (what avzsl-train, -evaluate and -export read) with ``verify=False`` (the baseline) and with
  verification (index datasets + every shard's rows of the mean features against their SHA-256);
- the extraction rerun's shard check, ``shard_is_complete`` over every shard without and with ``verify=True``
  (reads and hashes every dataset of every shard; with per-window sequences a real cache holds ~10x more bytes);
- ``read_class_table`` without and with its checksum (276 classes x 300-d).

Ratios are against the unverified read measured in the same run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from avzsl.pipeline import cache as C
from avzsl.pipeline.synth.features import SyntheticSpec, make_synthetic_cache


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def class_table_unverified(cache: Path) -> None:
    import h5py

    with h5py.File(cache / C.CLASS_TABLE, "r") as f:
        f["name"].asstr()[...], f["phrase"].asstr()[...], f["embedding"][...]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=94000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--shard-size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, default=None, help="write the cache here (kept) instead of a temp dir")
    args = parser.parse_args()
    classes = (138, 69, 69)  # VGGSound-GZSL: 276 classes
    per_class = max(1, round(args.videos / sum(classes)))
    spec = SyntheticSpec(*classes, per_class, args.dim, args.dim, 300, noise=1.0, shard_size=args.shard_size)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        cache = root / "cache"
        started = time.perf_counter()
        make_synthetic_cache(cache, root / "splits", spec)
        write_s = time.perf_counter() - started
        shards = C.list_shards(cache)
        n = len(C.load_features(cache))
        size_mb = sum(p.stat().st_size for p in shards) / 2**20
        timed: list[tuple[str, Callable[[], object]]] = [
            ("load_features, verify=False (baseline)", lambda: C.load_features(cache, verify=False)),
            ("load_features, verified", lambda: C.load_features(cache)),
            ("shard check of a rerun, structure only", lambda: [C.shard_is_complete(p) for p in shards]),
            ("shard check of a rerun, verify=True", lambda: [C.shard_is_complete(p, verify=True) for p in shards]),
            ("class table, unverified read", lambda: class_table_unverified(cache)),
            ("class table, read_class_table (verified)", lambda: C.read_class_table(cache)),
        ]
        rows = [(name, best_of(args.repeat, fn)) for name, fn in timed]
    base = rows[0][1]
    print(
        f"cache: {n} videos x 2 x {args.dim} float32 in {len(shards)} shards ({size_mb:.0f} MB), "
        f"written in {write_s:.1f} s"
    )
    print(f"{'operation':<44} {'seconds':>9} {'x baseline':>11}")
    for name, seconds in rows:
        print(f"{name:<44} {seconds:9.3f} {seconds / base:11.2f}")
    print(f"checksum overhead of load_features: {rows[1][1] - base:+.3f} s ({(rows[1][1] / base - 1) * 100:+.0f} %)")


if __name__ == "__main__":
    main()
