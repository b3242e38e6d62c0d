"""MCP tool call p50 vs REST p50 for the same workflow (double_plus_one), sequential
calls over loopback on one warm connection each.

    python benchmarks/bench_mcp.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from mcp import Client  # noqa: E402

from benchmarks.common import started, stat, write_results  # noqa: E402
from nexus_ray.loader import load_app  # noqa: E402


async def rest_p50(url: str, calls: int) -> float:
    times = []
    async with httpx.AsyncClient(base_url=url) as client:
        for i in range(calls + 20):
            started = time.perf_counter()
            r = await client.post("/workflows/double_plus_one/execute", json={"inputs": {"x": i}})
            elapsed = time.perf_counter() - started
            assert r.json()["outputs"]["add_one"]["result"]["value"] == 2 * i + 1
            if i >= 20:
                times.append(elapsed)
    return statistics.median(times) * 1000


async def mcp_p50(url: str, calls: int) -> float:
    times = []
    async with Client(f"{url}/mcp") as client:
        for i in range(calls + 20):
            started = time.perf_counter()
            result = await client.call_tool("double_plus_one", {"x": i})
            elapsed = time.perf_counter() - started
            assert result.structured_content["add_one"]["result"]["value"] == 2 * i + 1  # type: ignore[index]
            if i >= 20:
                times.append(elapsed)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", help="results file (default benchmarks/results/mcp-<date>.json)")
    args = parser.parse_args()
    with started(load_app(str(ROOT / "examples" / "quickstart.py")), "nexus-bench-mcp-") as url:
        rest = [asyncio.run(rest_p50(url, args.calls)) for _ in range(args.reps)]
        tool = [asyncio.run(mcp_p50(url, args.calls)) for _ in range(args.reps)]
    r, m = statistics.median(rest), statistics.median(tool)
    print(f"\nMCP vs REST, double_plus_one, {args.calls} sequential calls (median of {args.reps} runs' p50s)")
    print(
        f"  REST p50 {r:.2f} ms [{min(rest):.2f}-{max(rest):.2f}]; MCP tool call p50 {m:.2f} ms "
        f"[{min(tool):.2f}-{max(tool):.2f}]; difference {m - r:+.2f} ms (target within 2 ms)"
    )
    data = {"rest_p50_ms": stat(rest), "mcp_p50_ms": stat(tool), "difference_ms": round(m - r, 2)}
    print(f"written {write_results('mcp', data, args.out)}")


if __name__ == "__main__":
    main()
