"""Durable runs: checkpointing on vs off, and 1,000 concurrent runs of a 1 s sleep node.

    python benchmarks/bench_runs.py [--seconds 8] [--reps 3] [--runs 1000]

Each part starts its own app on an embedded local Ray (HAProxy ingress when available)
with a fresh store in a temp dir, removed when it stops. Loopback only; every response
is checked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks.common import interval_text, ratio_interval, shows_at_least, started, stat, write_results  # noqa: E402
from benchmarks.loadgen import post_json, tool  # noqa: E402
from benchmarks.store_work import measure_all  # noqa: E402
from nexus_ray import Nexus, WorkflowBuilder  # noqa: E402
from nexus_ray.testing.sample import double_plus_one  # noqa: E402


async def sleep_node(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@contextlib.contextmanager
def started_app(durable: bool) -> Iterator[tuple[Nexus, str]]:
    """An app with double_plus_one and sleep in a fresh home, and its URL; stopped, and
    its home removed, afterwards."""
    app = Nexus()
    app.register("double_plus_one", double_plus_one())
    app.register("sleep", WorkflowBuilder().add_node(sleep_node, "sleep"))
    with started(app, "nexus-bench-", durable=durable) as url:
        yield app, url


def checkpointing(seconds: float, reps: int, connections: tuple[int, ...] = (32, 128)) -> dict[str, Any]:
    """REST req/s of double_plus_one with checkpointing off and on, at each number of
    connections; ``off``/``on``/``ratio`` are the first (32), ``by_connections`` has all.

    Off and on alternate, a fresh app each time (off, on, off, on, ...): throughput on
    this machine drifts by 30% and more within minutes, and measuring all of one mode
    first put that drift into the ratio. ``pair_ratios`` are on / off of each pair."""
    rps: dict[str, dict[str, list[float]]] = {str(c): {"off": [], "on": []} for c in connections}
    for _ in range(reps):
        for durable in (False, True):
            for c, value in _one_app(durable, connections, seconds).items():
                rps[str(c)]["on" if durable else "off"].append(value)
    by: dict[str, dict[str, Any]] = {}
    for c, modes in rps.items():
        off, on = stat(modes["off"], 1), stat(modes["on"], 1)
        pairs = [round(a / b, 3) for a, b in zip(modes["on"], modes["off"], strict=True)]
        by[c] = {"off": off, "on": on, "ratio": round(on["median"] / off["median"], 3), "pair_ratios": pairs}
        if reps >= 2:
            by[c]["interval"] = ratio_interval(pairs)
    return {**by[str(connections[0])], "by_connections": by}


def _one_app(durable: bool, connections: tuple[int, ...], seconds: float) -> dict[int, float]:
    """Start an app, check one run, warm up, measure req/s at each number of connections."""
    with started_app(durable) as (_, base):
        url = f"{base}/workflows/double_plus_one/execute"
        r = httpx.post(url, json={"inputs": {"x": 5}}, timeout=30)
        assert r.json()["outputs"]["add_one"]["result"]["value"] == 11, r.text
        body = json.dumps({"inputs": {"x": 5}}).encode()
        post_json(url, body, 32, 3)  # warm-up
        out = {}
        for c in connections:
            result = post_json(url, body, c, seconds)
            assert result.errors == 0
            out[c] = result.rps
        return out


async def _python_burst(app: Nexus, runs: int) -> float:
    started = time.perf_counter()
    results = await asyncio.gather(*(app.aexecute("sleep", seconds=1.0) for _ in range(runs)))
    elapsed = time.perf_counter() - started
    assert all(r.status == "completed" for r in results)
    return elapsed


async def _rest_async_burst(url: str, runs: int) -> float:
    # 32 keep-alive connections: 1,000 simultaneous new TCP connections measure the client's
    # connection setup (even a bare uvicorn app takes ~8 s here), not the runtime.
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:
        started = time.perf_counter()
        body = {"inputs": {"seconds": 1.0}, "mode": "async"}
        gate = asyncio.Semaphore(32)  # httpx slows to ~100 req/s with 1,000 requests queued on its pool

        async def submit() -> httpx.Response:
            async with gate:
                return await client.post("/workflows/sleep/execute", json=body)

        accepted = await asyncio.gather(*(submit() for _ in range(runs)))
        pending = {r.json()["run_id"] for r in accepted if r.status_code == 202}
        assert len(pending) == runs
        oldest = min(pending)
        while pending:
            await asyncio.sleep(0.1)
            pending -= await _completed_since(client, oldest)
        return time.perf_counter() - started


async def _completed_since(client: httpx.AsyncClient, oldest: str) -> set[str]:
    """Completed sleep runs with ids >= oldest (ids sort by time: stop paging past it)."""
    done: set[str] = set()
    params: dict[str, Any] = {"workflow": "sleep", "status": "completed", "limit": 500}
    while True:
        page = (await client.get("/runs", params=params)).json()
        done |= {r["run_id"] for r in page["runs"] if r["run_id"] >= oldest}
        if not page["next_cursor"] or page["runs"][-1]["run_id"] < oldest:
            return done
        params["cursor"] = page["next_cursor"]


def concurrent_sleeps(runs: int, reps: int) -> dict[str, Any]:
    with started_app(True) as (app, base):
        asyncio.run(_python_burst(app, 50))  # warm-up
        python = [asyncio.run(_python_burst(app, runs)) for _ in range(reps)]
        rest = [asyncio.run(_rest_async_burst(base, runs)) for _ in range(reps)]
    return {"python": stat(python), "rest_async": stat(rest)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--out", help="results file (default benchmarks/results/runs-<date>.json)")
    args = parser.parse_args()
    ckpt = checkpointing(args.seconds, args.reps)
    burst = concurrent_sleeps(args.runs, args.reps)
    print(f"\nDurable runs ({tool()}, 32 connections, double_plus_one; median [min-max] of {args.reps})")
    print(f"  checkpointing off: {ckpt['off']['median']} req/s [{ckpt['off']['min']}-{ckpt['off']['max']}]")
    print(f"  checkpointing on:  {ckpt['on']['median']} req/s [{ckpt['on']['min']}-{ckpt['on']['max']}]")
    print(f"  on / off: {ckpt['ratio']:.0%} as a ratio of medians (the target, >= 80%, is judged by the interval)")
    for c, figures in ckpt["by_connections"].items():
        off, on = figures["off"]["median"], figures["on"]["median"]
        print(
            f"  {c} connections: off {off} req/s, on {on} req/s, on / off {figures['ratio']:.0%}"
            f" (each pair: {', '.join(f'{r:.0%}' for r in figures['pair_ratios'])})"
        )
        if "interval" in figures:
            shown = "shown" if shows_at_least(figures["interval"], 0.8) else "not shown"
            print(f"    pairs' geometric mean {interval_text(figures['interval'])}: >= 80% {shown}")
    store = measure_all()
    print(f"  in process: store work per durable run {store['store_us_per_run']['median']} us;")
    print(
        f"  one RunService, 32 at a time: off {store['run_service_off']['median']} runs/s,"
        f" on {store['run_service_on']['median']} runs/s ({store['run_service_ratio']:.0%})"
    )
    batch_off, batch_on = store["batch_of_16_ms_off"]["median"], store["batch_of_16_ms_on"]["median"]
    print(f"  one RunService, a batch of 16 runs at a time: off {batch_off} ms, on {batch_on} ms")
    for how, label in (("python", "Python aexecute"), ("rest_async", "REST async mode, 32 conns")):
        b = burst[how]
        print(f"  {args.runs} concurrent 1 s runs via {label}: {b['median']} s [{b['min']}-{b['max']}] (target <= 3 s)")
    data = {"checkpointing": ckpt, "concurrent_sleep_runs": {"runs": args.runs, **burst}, "in_process": store}
    print(f"written {write_results('runs', data, args.out)}")


if __name__ == "__main__":
    main()
