"""Time from a burst's start to added capacity, and from its end back to the minimum, for
the three things that scale: Serve ingress replicas, the RunHost / SessionHost pools, and
(fake) cluster nodes added by the Ray cluster autoscaler.

    python benchmarks/bench_scaling.py [--reps 1] [--out FILE]

The policy's delays are short here (grow after 1 s above target, shrink after 4 s below)
so the figures show what the mechanism adds on top of the delays it is given; production
delays (5 and 15 minutes) add to them as configured. Loopback only.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks.common import machine, scratch_dir, started, stat, write_results  # noqa: E402
from nexus_ray import Nexus, ScalingPolicy  # noqa: E402
from nexus_ray.scaling import ScaleDown, ScaleUp  # noqa: E402
from nexus_ray.testing.fake_cluster import FakeCluster  # noqa: E402

UP, DOWN = ScaleUp(queue_above=2, for_s=1, cooldown_s=1), ScaleDown(queue_below=1, for_s=4, cooldown_s=4)
POLICY = ScalingPolicy(
    ingress_max_replicas=3,
    run_hosts_max=3,
    runs_per_host=4,
    session_hosts_max=3,
    sessions_per_host=20,
    up=UP,
    down=DOWN,
)


def sleep_for(seconds: float) -> dict[str, float]:
    """The burst's work: waits (I/O-like), so load is runs in flight, not CPU."""
    time.sleep(seconds)
    return {"slept": seconds}


def wait_until(condition: Any, timeout_s: float, started: float) -> float | None:
    """Seconds from ``started`` until ``condition()`` held (None: not within the timeout)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return round(time.monotonic() - started, 2)
        time.sleep(0.2)
    return None


def serve_replicas(app: Nexus) -> dict[str, Any]:
    url = app.url

    def replicas() -> int:
        return httpx.get(f"{url}/ready", timeout=30).json()["ingress_replicas"] or 0  # type: ignore[no-any-return]

    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                client.post(f"{url}/workflows/sleep_for/execute", json={"inputs": {"seconds": 0.5}}).raise_for_status()

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        workers = [pool.submit(load) for _ in range(16)]
        first = wait_until(lambda: replicas() >= 2, 60, started)
        full = wait_until(lambda: replicas() >= 3, 60, started)
        stop.set()
        for worker in workers:
            worker.result()
    ended = time.monotonic()
    return {
        "to_2_replicas_s": first,
        "to_3_replicas_s": full,
        "back_to_1_s": wait_until(lambda: replicas() == 1, 90, ended),
    }


def host_pools(app: Nexus) -> dict[str, Any]:
    pool = app.runtime_pool()
    wait_until(lambda: len(pool.hosts) == 1 and len(pool.session_hosts) == 1, 120, time.monotonic())
    started = time.monotonic()
    runs = [app.submit("sleep_for", seconds=8.0) for _ in range(24)]
    run_grown = wait_until(lambda: len(pool.hosts) >= 2, 60, started)
    run_full = wait_until(lambda: len(pool.hosts) >= 3, 60, started)
    wait_until(lambda: all(app.get_run(r).status == "completed" for r in runs), 120, started)
    runs_done = time.monotonic()
    run_back = wait_until(lambda: len(pool.hosts) == 1, 120, runs_done)
    started = time.monotonic()
    sessions = [app.create_session({"i": i})["session_id"] for i in range(80)]
    session_grown = wait_until(lambda: len(pool.session_hosts) >= 2, 60, started)
    idle_from = time.monotonic()  # sessions are dropped from memory after session_idle_s
    session_back = wait_until(lambda: len(pool.session_hosts) == 1, 120, idle_from)
    intact = all(app.get_session(s)["state"]["i"] == i for i, s in enumerate(sessions))
    return {
        "run_hosts_to_2_s": run_grown,
        "run_hosts_to_3_s": run_full,
        "run_hosts_back_to_1_after_runs_end_s": run_back,
        "session_hosts_to_2_s": session_grown,
        "session_hosts_back_to_1_s": session_back,
        "run_pool_history": pool.history("run"),
        "session_pool_history": pool.history("session"),
        "sessions_intact": intact,
    }


def _burst(cluster: FakeCluster, home: Path, markers: Path) -> dict[str, Any]:
    """The burst of runs on ``cluster`` (in a driver process of its own), as it reports it."""
    env = {**os.environ, **cluster.driver_env(), "NEXUS_INGRESS": "default"}
    args = [
        sys.executable,
        "-m",
        "nexus_ray.testing.cluster_burst",
        cluster.address,
        cluster.temp_dir,
        str(home),
        str(markers),
        "6",
        "3",
    ]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["burst"]  # type: ignore[no-any-return]


def cluster_nodes() -> dict[str, Any]:
    cluster = FakeCluster(worker_cpus=1, max_workers=3, idle_timeout_s=6)
    cluster.start()
    try:
        with scratch_dir("nexus-bench-home-") as home, scratch_dir("nexus-bench-marks-") as markers:
            report = _burst(cluster, home, markers)
    finally:
        cluster.stop()
    timeline = report["timeline"]
    start = timeline[0][0]  # the first sample follows the submission of the burst
    first = next(t for t, n in timeline if n >= 1) - start
    full = next(t for t, n in timeline if n == max(n for _, n in timeline)) - start
    gone = next(t for t, n in timeline if t > report["runs_ended_s"] and n == 0) - report["runs_ended_s"]
    return {
        "first_node_s": round(first, 2),
        "max_nodes": max(n for _, n in timeline),
        "max_nodes_s": round(full, 2),
        "runs_ended_s": round(report["runs_ended_s"] - start, 2),
        "nodes_gone_after_runs_end_s": round(gone, 2),
        "idle_timeout_s": 6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--out", help="results file (default benchmarks/results/scaling-<date>.json)")
    args = parser.parse_args()
    raw: dict[str, list[dict[str, Any]]] = {"serve": [], "pools": [], "nodes": []}
    for _ in range(args.reps):
        app = Nexus()
        app.register("sleep_for", sleep_for)
        with started(app, "nexus-bench-scale-", ingress="default", scaling=POLICY, session_idle_s=3.0):
            raw["pools"].append(host_pools(app))
            raw["serve"].append(serve_replicas(app))
        raw["nodes"].append(cluster_nodes())
    summary = {
        part: {key: stat([r[key] for r in runs]) for key in runs[0] if isinstance(runs[0][key], int | float)}
        for part, runs in raw.items()
        if all(all(v is not None for v in r.values()) for r in runs)
    }
    data = {"machine": machine(), "policy": POLICY.model_dump(), "summary": summary, "raw": raw}
    print(json.dumps({"summary": summary}, indent=2))
    print(f"wrote {write_results('scaling', data, args.out)}")


if __name__ == "__main__":
    main()
