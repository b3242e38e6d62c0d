"""CPU-bound plain-function nodes and the RunHosts' leases: runs that complete, node
executions per run, wall time.

    python benchmarks/bench_cpu_nodes.py [--runs 64] [--cpu-s 3] [--lease-s 10] [--run-hosts 2]

Each run has one node, a plain function doing --cpu-s seconds of pure-Python work (it
holds the GIL) in its RunHost's node threads; all runs start at once. Every execution of
the node appends a line to a file named after the run's input, so a node that a second
host ran again after adopting a run whose lease lapsed shows up as more lines than runs.
No host dies here: every run should complete with its node run once.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import free_port, machine, scratch_dir, write_results  # noqa: E402
from nexus_ray import Nexus, Settings  # noqa: E402


def spin(i: int, cpu_s: float, marks: str) -> int:
    """Record this execution, then hold the GIL with pure-Python work for ``cpu_s``."""
    import os
    import time

    with open(os.path.join(marks, str(i)), "a") as f:
        f.write(f"{os.getpid()}\n")
    end = time.thread_time() + cpu_s
    while time.thread_time() < end:
        pass
    return i


def measure(runs: int, cpu_s: float, lease_s: float, run_hosts: int) -> dict[str, Any]:
    with scratch_dir("nexus-bench-cpu-") as home, scratch_dir("nexus-bench-marks-") as marks:
        app = Nexus(settings=Settings(port=free_port(), home=home, run_hosts=run_hosts, lease_s=lease_s))
        app.register("spin", spin)
        app.start()
        try:
            started = time.monotonic()
            with ThreadPoolExecutor(runs) as pool:
                results = list(pool.map(lambda i: app.execute("spin", i=i, cpu_s=cpu_s, marks=str(marks)), range(runs)))
            wall = time.monotonic() - started
        finally:
            app.stop()
        executions = {p.name: len(p.read_text().splitlines()) for p in marks.iterdir()}
    statuses = collections.Counter(r.status.value for r in results)
    errors = collections.Counter(r.error["type"] for r in results if r.error)
    return {
        "runs": runs,
        "completed": statuses.get("completed", 0),
        "failed": statuses.get("failed", 0),
        "errors": dict(errors),
        "node_executions": sum(executions.values()),
        "runs_whose_node_ran_again": sum(1 for n in executions.values() if n > 1),
        "wall_s": round(wall, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=64)
    parser.add_argument("--cpu-s", type=float, default=3.0)
    parser.add_argument("--lease-s", type=float, default=10.0)
    parser.add_argument("--run-hosts", type=int, default=2)
    parser.add_argument("--out", help="results file (default benchmarks/results/cpu-nodes-<date>.json)")
    args = parser.parse_args()
    result = measure(args.runs, args.cpu_s, args.lease_s, args.run_hosts)
    print(
        f"\n{args.runs} runs of {args.cpu_s} s of pure-Python work, {args.run_hosts} RunHosts, lease {args.lease_s} s:"
        f" {result['completed']} completed, {result['failed']} failed {result['errors'] or ''};"
        f" {result['node_executions']} node executions ({result['runs_whose_node_ran_again']} runs ran it again);"
        f" {result['wall_s']} s"
    )
    data = {"machine": machine(), "args": vars(args), **result}
    print(f"written {write_results('cpu-nodes', data, args.out)}")


if __name__ == "__main__":
    main()
