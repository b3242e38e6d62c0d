"""Cross-channel delivery: 100 WebSocket subscribers on one session, 1,000 updates over REST.

    python benchmarks/bench_events.py [--subscribers 100] [--updates 1000] [--reps 3]

Each update is a PATCH that stamps the send time into the state; each subscriber records
when the matching session.updated event arrives. Latency = arrival - send, over every
(subscriber, update) pair; every subscriber must see every update, in order. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import websockets  # noqa: E402

from benchmarks.common import started, stat, write_results  # noqa: E402
from nexus_ray import Nexus  # noqa: E402


async def subscriber(url: str, updates: int, latencies: list[float], ready: asyncio.Event) -> None:
    seen = 0
    async with websockets.connect(url, max_queue=None) as ws:
        ready.set()
        while seen < updates:
            event = json.loads(await ws.recv())
            arrived = time.time()
            if event["type"] != "session.updated":
                continue
            seen += 1
            assert event["data"]["state"]["i"] == seen, "an update was lost or reordered"
            latencies.append(arrived - event["data"]["state"]["sent"])


async def one_round(base: str, subscribers: int, updates: int) -> list[float]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        sid = (await client.post("/sessions", json={"state": {"i": 0}})).json()["session_id"]
        url = base.replace("http://", "ws://") + f"/ws/sessions/{sid}?after=1"
        latencies: list[float] = []
        readies = [asyncio.Event() for _ in range(subscribers)]
        tasks = [asyncio.ensure_future(subscriber(url, updates, latencies, r)) for r in readies]
        await asyncio.gather(*(r.wait() for r in readies))
        await asyncio.sleep(0.5)  # every subscription reached its host
        for i in range(1, updates + 1):
            r = await client.patch(f"/sessions/{sid}", json={"i": i, "sent": time.time()})
            assert r.status_code == 200, r.text
        await asyncio.wait_for(asyncio.gather(*tasks), 120)
        assert len(latencies) == subscribers * updates
        return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--updates", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", help="results file (default benchmarks/results/events-<date>.json)")
    args = parser.parse_args()
    rounds = []
    with started(Nexus(), "nexus-bench-events-") as url:
        for _ in range(args.reps):
            latencies = asyncio.run(one_round(url, args.subscribers, args.updates))
            rounds.append((percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000))
    p50s, p99s = [r[0] for r in rounds], [r[1] for r in rounds]
    print(f"\nEvents: {args.subscribers} WebSocket subscribers of one session, {args.updates} REST updates")
    print(
        f"  delivery latency p50 {statistics.median(p50s):.1f} ms [{min(p50s):.1f}-{max(p50s):.1f}], "
        f"p99 {statistics.median(p99s):.1f} ms [{min(p99s):.1f}-{max(p99s):.1f}] (target p99 < 50 ms)"
    )
    data = {"subscribers": args.subscribers, "updates": args.updates, "p50_ms": stat(p50s, 1), "p99_ms": stat(p99s, 1)}
    print(f"written {write_results('events', data, args.out)}")


if __name__ == "__main__":
    main()
