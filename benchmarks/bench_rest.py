"""REST execute of double_plus_one vs a no-op Serve endpoint on the same ingress.

    python benchmarks/bench_rest.py [--seconds 10] [--reps 3]

Starts the quickstart app on an embedded local Ray (HAProxy ingress when haproxy is on PATH),
deploys a no-op FastAPI endpoint on the same Serve instance, checks every target answers
correctly, then measures 1 and 32 keep-alive connections (median of --reps runs, min-max).
Prints a table and writes benchmarks/results/<date>.json. Loopback only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import socket
import statistics
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from ray import serve  # noqa: E402

from benchmarks.loadgen import LoadResult, post_json, tool  # noqa: E402
from nexus_ray import Settings  # noqa: E402
from nexus_ray.channels.http.ingress import QUIET_LOGS  # noqa: E402
from nexus_ray.loader import load_app  # noqa: E402

noop_api = FastAPI()


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)
@serve.ingress(noop_api)
class NoOp:
    @noop_api.post("/")
    async def noop(self) -> dict[str, bool]:
        return {"ok": True}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(url: str, body: bytes, connections: int, seconds: float, reps: int) -> dict[str, Any]:
    post_json(url, body, connections, min(3.0, seconds))  # warm-up
    runs: list[LoadResult] = [post_json(url, body, connections, seconds) for _ in range(reps)]
    errors = sum(r.errors for r in runs)

    def stat(attr: str) -> dict[str, float]:
        values = [getattr(r, attr) for r in runs]
        return {
            "median": round(statistics.median(values), 2),
            "min": round(min(values), 2),
            "max": round(max(values), 2),
        }

    return {
        "rps": stat("rps"),
        "p50_ms": stat("p50_ms"),
        "p99_ms": stat("p99_ms"),
        "requests": sum(r.requests for r in runs),
        "errors": errors,
    }


def check_correct(base: str) -> None:
    r = httpx.post(f"{base}/workflows/double_plus_one/execute", json={"inputs": {"x": 5}}, timeout=30)
    assert r.status_code == 200 and r.json()["outputs"]["add_one"]["result"]["value"] == 11, r.text
    r = httpx.post(f"{base}/noop/", timeout=30)
    assert r.status_code == 200 and r.json() == {"ok": True}, r.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()

    app = load_app(str(ROOT / "examples" / "quickstart.py"))
    app.settings = Settings(port=free_port())
    info = app.start()
    try:
        serve.run(NoOp.bind(), name="noop", route_prefix="/noop", logging_config=QUIET_LOGS)
        check_correct(info.url)
        body = json.dumps({"inputs": {"x": 5}}).encode()
        results: dict[str, Any] = {}
        for conns in (1, 32):
            results[f"nexus_ray c={conns}"] = measure(
                f"{info.url}/workflows/double_plus_one/execute", body, conns, args.seconds, args.reps
            )
            results[f"serve no-op c={conns}"] = measure(f"{info.url}/noop/", b"{}", conns, args.seconds, args.reps)
    finally:
        app.stop()
    report(results, info.ingress, args)


def report(results: dict[str, Any], ingress: str, args: argparse.Namespace) -> None:
    ratio = {
        c: results[f"nexus_ray c={c}"]["rps"]["median"] / results[f"serve no-op c={c}"]["rps"]["median"]
        for c in (1, 32)
    }
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(
        f"\nREST execute double_plus_one vs no-op Serve endpoint — ingress: {ingress}; load: {tool()}; "
        f"{args.reps} x {args.seconds:.0f} s each (median, [min-max]); {machine}"
    )
    print(f"{'target':<22}{'req/s':>26}{'p50 ms':>24}{'p99 ms':>24}{'errors':>8}")
    for name, r in results.items():
        cells = [f"{r[k]['median']} [{r[k]['min']}-{r[k]['max']}]" for k in ("rps", "p50_ms", "p99_ms")]
        print(f"{name:<22}{cells[0]:>26}{cells[1]:>24}{cells[2]:>24}{r['errors']:>8}")
    print(
        f"ratio nexus_ray / no-op: c=1 {ratio[1]:.0%}, c=32 {ratio[32]:.0%} (target >= 50% at c=32); "
        f"p50 at c=1: {results['nexus_ray c=1']['p50_ms']['median']} ms (target <= 5 ms)"
    )
    out = ROOT / "benchmarks" / "results" / f"{dt.date.today().isoformat()}.json"
    out.write_text(
        json.dumps(
            {
                "ingress": ingress,
                "load": tool(),
                "machine": machine,
                "results": results,
                "ratio": {str(k): v for k, v in ratio.items()},
            },
            indent=2,
        )
    )
    print(f"written {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
