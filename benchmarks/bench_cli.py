"""The CLI: `nexus --help` wall time, and `nexus run double_plus_one -i x=5` against a
running server (process start to exit, output checked).

    python benchmarks/bench_cli.py [--reps 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import started, stat, write_results  # noqa: E402
from nexus_ray.loader import load_app  # noqa: E402

NEXUS = str(Path(sys.executable).parent / "nexus")


def timed(args: list[str], check: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([NEXUS, *args], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - started
    assert done.returncode == 0 and check in done.stdout, done.stderr
    return elapsed


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{statistics.median(ms):.0f} ms [{min(ms):.0f}-{max(ms):.0f}]"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--out", help="results file (default benchmarks/results/cli-<date>.json)")
    args = parser.parse_args()
    helps = [timed(["--help"], "Usage") for _ in range(args.reps)]
    with started(load_app(str(ROOT / "examples" / "quickstart.py")), "nexus-bench-cli-") as url:
        run = ["run", "double_plus_one", "-i", "x=5", "--url", url]
        timed(run, '"value": 11')  # warm-up
        runs = [timed(run, '"value": 11') for _ in range(args.reps)]
    print(f"\nCLI (median [min-max] of {args.reps})")
    print(f"  nexus --help: {summary(helps)} (target < 300 ms)")
    print(f"  nexus run double_plus_one -i x=5 against a running server: {summary(runs)} (target < 500 ms)")
    data = {"help_ms": stat([h * 1000 for h in helps], 0), "run_ms": stat([r * 1000 for r in runs], 0)}
    print(f"written {write_results('cli', data, args.out)}")


if __name__ == "__main__":
    main()
