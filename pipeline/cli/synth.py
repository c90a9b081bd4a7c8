"""``avzsl-synth``: write a benchmark-shaped synthetic feature cache (real split files and class embeddings)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from avzsl.data_manifests import BENCHMARKS
from avzsl.pipeline.cli.errors import report_user_error, user_errors
from avzsl.pipeline.cli.helptext import HelpFormatter, add_version_option
from avzsl.pipeline.cli.logs import setup_logging

DIFFICULTY_NAMES = ("benchmark", "v1")
"""The --difficulty choices, the default first (avzsl.pipeline.synth.benchmark.DIFFICULTY_LEVELS, which imports
numpy: --help stays cheap; tests/test_benchmark_synth.py checks the two agree)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avzsl-synth",
        description=(
            "Generate a feature cache shaped like a real AV-GZSL benchmark: the videos, classes and per-class counts "
            "of its split files, its released fastText class-name embeddings, and 512-d audio/visual features whose "
            "class structure follows those embeddings through a nonlinear map plus class idiosyncrasy, noise and "
            "nuisance directions (see avzsl.pipeline.synth.benchmark). Train on it with "
            "avzsl-train --benchmark NAME --cache OUT. The seed fixes everything."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--benchmark", required=True, choices=BENCHMARKS, type=str.lower,
                        help="benchmark whose split files and class embeddings shape the cache")
    parser.add_argument("--out", required=True, type=Path, help="cache directory to create (absent or empty)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every generated number")
    parser.add_argument("--split", dest="split_variant", choices=("main", "cls"), default="main",
                        help="benchmark split variant whose files are used")
    parser.add_argument("--windows", type=int, default=0,
                        help="also store about this many per-window features per video (for TCAF); 0 = none")
    parser.add_argument("--difficulty", choices=tuple(DIFFICULTY_NAMES), default=DIFFICULTY_NAMES[0],
                        help="how hard the data are: 'benchmark' (issue 18: at ActivityNet size a closed-form linear "
                        "map is well ahead of the paper's method, as on the benchmarks) or 'v1' (issue 8's generator)")
    parser.add_argument("--transfer", type=float, default=None,
                        help="share of class-mean variance predictable from the class embedding (default: spec)")
    parser.add_argument("--verbose", action="store_true", help="debug logging")
    add_version_option(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 2 user error)."""
    args = build_parser().parse_args(argv)
    setup_logging(verbose=args.verbose)
    from avzsl.pipeline.synth.benchmark import (  # lazy: pulls in torch; --help stays cheap
        BenchmarkSynthSpec,
        write_benchmark_cache,
    )

    extra = {} if args.transfer is None else {"transfer": args.transfer}
    try:
        spec = BenchmarkSynthSpec(difficulty=args.difficulty, benchmark=args.benchmark,
                                  split_variant=args.split_variant, seed=args.seed, windows=args.windows, **extra)
        started = time.perf_counter()
        count = write_benchmark_cache(args.out, spec)
    except user_errors() as exc:
        return report_user_error(exc)
    sys.stdout.write(f"wrote {count} videos of {args.benchmark} to {args.out} in {time.perf_counter() - started:.1f} s"
                     f"; train with: avzsl-train --benchmark {args.benchmark} --cache {args.out} --out RUN\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
