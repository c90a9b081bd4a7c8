"""Start-up time of every command-line tool: ``avzsl-<cli> --help`` wall time against ``python -c pass``.

Usage: python bench/cli_startup.py [--repeat 5]

Each command runs ``--repeat`` times in a fresh process (the installed console script next to this interpreter,
as a user would run it); the table gives the median and the best wall time, the median as a ratio of the
baseline measured in the same run (``python -c pass``), and for context ``python -c "import torch"``, the cost
the CLIs avoid by importing heavy modules only after parsing their arguments. Target: ``--help`` under 0.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

CLIS = ("extract", "train", "evaluate", "predict", "report", "sweep", "import", "export", "demo", "synth", "splits")
# The module each console script runs (pyproject.toml [project.scripts]), for a checkout without the scripts.
_CLI_MODULES = {name: f"avzsl.pipeline.cli.{name}" for name in CLIS} | {
    "import": "avzsl.pipeline.cli.import_features", "export": "avzsl.pipeline.cli.export_features"}
TARGET_S = 0.5


def wall_times(command: list[str], repeat: int) -> list[float]:
    """Seconds of ``repeat`` runs of ``command`` (each must exit 0)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (median reported)")
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    rows: list[tuple[str, list[float]]] = [
        ("python -c pass (baseline)", wall_times([sys.executable, "-c", "pass"], args.repeat)),
        ('python -c "import torch"', wall_times([sys.executable, "-c", "import torch"], args.repeat)),
    ]
    for name in CLIS:
        script = bin_dir / f"avzsl-{name}"
        command = [str(script), "--help"] if script.exists() else [sys.executable, "-m", _CLI_MODULES[name],
                                                                    "--help"]
        rows.append((f"avzsl-{name} --help", wall_times(command, args.repeat)))
    base = statistics.median(rows[0][1])
    out = [f"{'command':<30} {'median s':>9} {'best s':>8} {'x baseline':>11}  under {TARGET_S} s"]
    slow = 0
    for label, times in rows:
        median = statistics.median(times)
        verdict = "" if not label.startswith("avzsl-") else ("yes" if median < TARGET_S else "NO")
        slow += verdict == "NO"
        out.append(f"{label:<30} {median:9.3f} {min(times):8.3f} {median / base:11.1f}  {verdict}")
    out.append(f"({args.repeat} runs each; {slow} CLI(s) over {TARGET_S} s)")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
