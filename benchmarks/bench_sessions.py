"""Sessions: create/get/update ops/s through the Python API and REST; memory of the
SessionHost holding many sessions.

    python benchmarks/bench_sessions.py [--seconds 5] [--sessions 100000]

Python: async calls from the driver through the SessionsClient, 64 in flight. REST: wrk
(else httpx) at 32 connections on GET and PATCH of one session, POST /sessions. Memory:
RSS of the SessionHost process after creating --sessions sessions (all active, none
passivated). Loopback only; every response is checked.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psutil  # noqa: E402

from benchmarks.common import started, stat, write_results  # noqa: E402
from benchmarks.loadgen import load, post_json, tool  # noqa: E402
from nexus_ray import Nexus  # noqa: E402


async def _ops_per_s(op: Any, seconds: float, in_flight: int = 256) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await op()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return done / (time.perf_counter() - started)


def python_ops(app: Nexus, seconds: float) -> dict[str, float]:
    sid = app.create_session({"n": 0})["session_id"]
    many = [app.create_session({"n": 0})["session_id"] for _ in range(64)]
    spread = iter(range(10**9))

    async def run() -> dict[str, float]:
        return {
            "create": await _ops_per_s(lambda: app.acreate_session({"n": 0}), seconds),
            "get": await _ops_per_s(lambda: app.aget_session(sid), seconds),
            "update": await _ops_per_s(lambda: app.aupdate_session(sid, {"n": 1}), seconds),
            "update_64": await _ops_per_s(lambda: app.aupdate_session(many[next(spread) % 64], {"n": 1}), seconds),
        }

    return {k: round(v) for k, v in asyncio.run(run()).items()}


def rest_ops(url: str, seconds: float) -> dict[str, float]:
    sid = httpx.post(f"{url}/sessions", json={"state": {"n": 0}}).json()["session_id"]
    out = {"create": post_json(f"{url}/sessions", b'{"state": {"n": 0}}', 32, seconds)}
    out["get"] = load("GET", f"{url}/sessions/{sid}", None, 32, seconds)
    out["update"] = load("PATCH", f"{url}/sessions/{sid}", b'{"n": 1}', 32, seconds)
    assert all(r.errors == 0 for r in out.values()), {k: r.errors for k, r in out.items()}
    return {k: round(r.rps) for k, r in out.items()}


def memory_for(app: Nexus, count: int) -> dict[str, float]:
    client = app._pool.sessions()
    host_pid = next(iter(client.hosts.values())).info.remote()
    import ray

    ray.get(host_pid)
    pids = [p for p in psutil.Process().children(recursive=True) if "SessionHost" in " ".join(p.cmdline())]
    before = sum(p.memory_info().rss for p in pids)

    async def create_all() -> None:
        gate = asyncio.Semaphore(64)

        async def one(i: int) -> None:
            async with gate:
                await client.create({"user": f"u{i}", "cart": []}, None)

        await asyncio.gather(*(one(i) for i in range(count)))

    started = time.perf_counter()
    asyncio.run(create_all())
    elapsed = time.perf_counter() - started
    after = sum(p.memory_info().rss for p in pids)
    active = ray.get(next(iter(client.hosts.values())).info.remote())["active_sessions"]
    assert active >= count
    return {
        "sessions": count,
        "rss_mb": round(after / 2**20),
        "growth_mb": round((after - before) / 2**20),
        "create_s": round(elapsed, 1),
    }


def one_round(args: argparse.Namespace) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Ops and memory with a fresh app (the memory figure needs an empty SessionHost)."""
    app = Nexus()
    with started(app, "nexus-bench-") as url:
        return python_ops(app, args.seconds), rest_ops(url, args.seconds), memory_for(app, args.sessions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", help="results file (default benchmarks/results/sessions-<date>.json)")
    args = parser.parse_args()
    rounds = [one_round(args) for _ in range(args.reps)]
    py = {k: stat([r[0][k] for r in rounds], 0) for k in rounds[0][0]}
    rest = {k: stat([r[1][k] for r in rounds], 0) for k in rounds[0][1]}
    mem = {k: stat([r[2][k] for r in rounds], 1) for k in rounds[0][2]}
    print(f"\nSessions ({tool()} for REST, 32 connections; Python: 256 calls in flight)")
    print(
        f"  Python ops/s: create {py['create']}, get {py['get']}, update {py['update']} "
        f"(one session; 64 sessions: {py['update_64']}) (target >= 10,000)"
    )
    print(f"  REST ops/s:   create {rest['create']}, get {rest['get']}, update {rest['update']} (target >= 2,000)")
    print(
        f"  {mem['sessions']} active sessions: SessionHost RSS {mem['rss_mb']} MB (+{mem['growth_mb']} MB), "
        f"created in {mem['create_s']} s (target <= 1 GB)"
    )
    data = {"python_ops": py, "rest_ops": rest, "memory": mem}
    print(f"written {write_results('sessions', data, args.out)}")


if __name__ == "__main__":
    main()
