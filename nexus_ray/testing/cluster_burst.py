"""Drives a nexus_ray app on a fake autoscaling cluster and prints what happened as JSON.

Run as a subprocess (this process joins the fake cluster, so it cannot be a test's own
Ray): ``python -m nexus_ray.testing.cluster_burst ADDRESS TEMP_DIR HOME MARKERS [BURST]
[SECONDS]``. Used by tests/integration/test_cluster_autoscaler.py and
benchmarks/bench_scaling.py.

1. Burst: BURST runs whose node needs a CPU start at once on a cluster with no worker
   node; the timeline records worker nodes every 0.25 s until every run ended and the
   idle nodes are gone again.
2. Node loss: two runs start; when both nodes are running, the worker node of the first is
   killed outright; both runs must still complete.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .. import Nexus, WorkflowBuilder
from .fake_cluster import kill_node_of, worker_nodes


def cpu_work(tag: str, seconds: float, markers: str) -> dict[str, Any]:
    """Needs a CPU (a Ray task); leaves one file per attempt naming the node it ran on."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    Path(markers, f"{tag}.{os.getpid()}.{time.time_ns()}").write_text(node_id)
    time.sleep(seconds)
    return {"tag": tag, "node_id": node_id}


def attempts(markers: str, tag: str) -> list[str]:
    """The nodes each attempt of ``tag`` ran on, oldest first."""
    files = sorted(Path(markers).glob(f"{tag}.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    return [p.read_text() for p in files]


def wait_all(app: Nexus, run_ids: list[str], timeline: list[tuple[float, int]], t0: float, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    pending = set(run_ids)
    while pending and time.monotonic() < deadline:
        timeline.append((round(time.monotonic() - t0, 2), len(worker_nodes())))
        pending = {r for r in pending if app.get_run(r).status in ("pending", "running")}
        time.sleep(0.25)


def wait_workers(count: int, timeline: list[tuple[float, int]], t0: float, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        timeline.append((round(time.monotonic() - t0, 2), len(worker_nodes())))
        if timeline[-1][1] == count:
            return
        time.sleep(0.25)


def burst(app: Nexus, markers: str, size: int, seconds: float) -> dict[str, Any]:
    timeline: list[tuple[float, int]] = []
    t0 = time.monotonic()
    run_ids = [app.submit("cpu_burst", tag=f"burst{i}", seconds=seconds, markers=markers) for i in range(size)]
    wait_all(app, run_ids, timeline, t0, timeout_s=180)
    ended = round(time.monotonic() - t0, 2)
    wait_workers(0, timeline, t0, timeout_s=120)
    tags = [f"burst{i}" for i in range(size)]
    return {"timeline": timeline, "runs_ended_s": ended, **outcome(app, run_ids, markers, tags)}


def node_loss(app: Nexus, markers: str, temp_dir: str, seconds: float) -> dict[str, Any]:
    tags = ["loss0", "loss1"]
    run_ids = [app.submit("cpu_burst", tag=tag, seconds=seconds, markers=markers) for tag in tags]
    deadline = time.monotonic() + 120
    while not all(attempts(markers, tag) for tag in tags) and time.monotonic() < deadline:
        time.sleep(0.1)
    victim = attempts(markers, tags[0])[0]
    killed = kill_node_of(temp_dir, victim)
    wait_all(app, run_ids, [], time.monotonic(), timeout_s=180)
    return {"killed_node": victim, "killed_pids": killed, **outcome(app, run_ids, markers, tags)}


def outcome(app: Nexus, run_ids: list[str], markers: str, tags: list[str]) -> dict[str, Any]:
    """The runs' statuses and outputs, and the nodes each attempt of each tag ran on."""
    runs = [app.get_run(r) for r in run_ids]
    return {
        "statuses": [r.status for r in runs],
        "outputs": [r.outputs for r in runs],
        "attempts": {tag: attempts(markers, tag) for tag in tags},
    }


def main() -> None:
    address, temp_dir, home, markers = sys.argv[1:5]
    size = int(sys.argv[5]) if len(sys.argv) > 5 else 6
    seconds = float(sys.argv[6]) if len(sys.argv) > 6 else 3.0
    app = Nexus(ray_address=address, home=Path(home))
    app.register("cpu_burst", WorkflowBuilder().add_node(cpu_work, "work", resources={"num_cpus": 1}))
    try:
        report = {"burst": burst(app, markers, size, seconds), "node_loss": node_loss(app, markers, temp_dir, 6.0)}
    finally:
        app.stop()
    print(json.dumps(report))


if __name__ == "__main__":
    main()
