"""``nexus serve`` cold start to the first 2xx, and the memory of the whole process tree idle.

    python benchmarks/bench_startup.py [--reps 3] [--idle-s 10] [--out FILE]

Each repetition starts ``nexus serve examples/quickstart.py`` in a fresh NEXUS_HOME on a
free port, times until ``POST /workflows/double_plus_one/execute`` first answers 2xx with
the right value, waits --idle-s seconds, then sums the memory of the serve process and all
its descendants (embedded Ray's GCS, raylet, dashboard, workers, HAProxy). RSS counts
shared pages once per process; PSS (each shared page divided among its users) is what the
tree really costs, so both are reported. SIGTERM stops it (the command stops everything it
started). Loopback only.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402

from benchmarks.common import free_port, machine, scratch_dir, stat, write_results  # noqa: E402

NEXUS = str(Path(sys.executable).parent / "nexus")


def wait_first_2xx(url: str, process: subprocess.Popen[bytes], timeout_s: float = 180.0) -> None:
    """Return once ``url`` executes double_plus_one correctly."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"nexus serve exited with {process.returncode}")
        try:
            r = httpx.post(f"{url}/workflows/double_plus_one/execute", json={"inputs": {"x": 5}}, timeout=5)
            if r.is_success:
                assert r.json()["outputs"]["add_one"]["result"]["value"] == 11, r.text
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"no 2xx from {url} within {timeout_s:.0f} s")


def tree_memory_mb(pid: int) -> dict[str, float]:
    """RSS and PSS of ``pid`` and its descendants, in MB."""
    root = psutil.Process(pid)
    rss = pss = 0
    count = 0
    for process in [root, *root.children(recursive=True)]:
        try:
            info = process.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
        count += 1
    return {"rss_mb": round(rss / 2**20), "pss_mb": round(pss / 2**20), "processes": count}


def one_start(idle_s: float) -> dict[str, Any]:
    """Seconds from `nexus serve` to its first 2xx, and its processes' memory after ``idle_s``."""
    with scratch_dir("nexus-bench-start-") as home:
        return _start_in(home, idle_s)


def _start_in(home: Path, idle_s: float) -> dict[str, Any]:
    port = free_port()
    env = {**os.environ, "NEXUS_HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    command = [NEXUS, "serve", str(ROOT / "examples" / "quickstart.py"), "--port", str(port)]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        wait_first_2xx(f"http://127.0.0.1:{port}", process)
        first = time.perf_counter() - started
        time.sleep(idle_s)
        memory = tree_memory_mb(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group this function started
            process.wait()
    return {"first_2xx_s": first, **memory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--idle-s", type=float, default=10.0)
    parser.add_argument("--out", help="results file (default benchmarks/results/startup-<date>.json)")
    args = parser.parse_args()
    runs = [one_start(args.idle_s) for _ in range(args.reps)]
    data = {
        "cold_start_s": stat([r["first_2xx_s"] for r in runs]),
        "idle_rss_mb": stat([r["rss_mb"] for r in runs], 0),
        "idle_pss_mb": stat([r["pss_mb"] for r in runs], 0),
        "processes": runs[-1]["processes"],
        "machine": machine(),
    }
    print(f"\nnexus serve examples/quickstart.py (median [min-max] of {args.reps})")
    print(f"  cold start to first 2xx: {data['cold_start_s']}")
    print(f"  idle, {data['processes']} processes: RSS {data['idle_rss_mb']} MB, PSS {data['idle_pss_mb']} MB")
    print(f"written {write_results('startup', data, args.out)}")


if __name__ == "__main__":
    main()
