"""REST execute of double_plus_one: nexus_ray against the ceilings under it and the system
it replaces, all in one run.

    python benchmarks/bench_rest.py [--seconds 5] [--reps 3] [--out FILE] [--skip-kailash]

Targets, at 1 and 32 keep-alive connections (median of --reps runs, [min-max]):
- nexus_ray: the quickstart app on an embedded local Ray (HAProxy ingress when on PATH);
- serve no-op: a FastAPI endpoint that does nothing, on the same Serve instance and ingress
  (the substrate's ceiling);
- bare FastAPI: uvicorn, one worker, computing the result inline (the Python ceiling);
- kailash-nexus 2.16: the same 2-node workflow through its own REST API, installed into
  benchmarks/.venvs/kailash on first use.
Every target is checked for a correct answer first and every response must be 2xx.
Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from ray import serve  # noqa: E402

from benchmarks.common import free_port, machine, stat, write_results  # noqa: E402
from benchmarks.competitors.servers import bare_fastapi_command, kailash_command, serving  # noqa: E402
from benchmarks.loadgen import LoadResult, post_json, tool  # noqa: E402
from nexus_ray import Settings  # noqa: E402
from nexus_ray.channels.http.ingress import QUIET_LOGS  # noqa: E402
from nexus_ray.loader import load_app  # noqa: E402

EXECUTE = "/workflows/double_plus_one/execute"
BODY = json.dumps({"inputs": {"x": 5}}).encode()
KAILASH_BODY = json.dumps({"inputs": {"double": {"x": 5}}}).encode()  # kailash: inputs per node

noop_api = FastAPI()


@serve.deployment(ray_actor_options={"num_cpus": 0}, max_ongoing_requests=256)
@serve.ingress(noop_api)
class NoOp:
    @noop_api.post("/")
    async def noop(self) -> dict[str, bool]:
        return {"ok": True}


def measure(
    url: str, body: bytes, connections: int, seconds: float, reps: int, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """Warm up, then ``reps`` runs: req/s, p50 and p99 as median [min-max]; errors summed."""
    post_json(url, body, connections, min(3.0, seconds), headers)  # warm-up
    runs: list[LoadResult] = [post_json(url, body, connections, seconds, headers) for _ in range(reps)]
    return {
        "rps": stat([r.rps for r in runs]),
        "p50_ms": stat([r.p50_ms for r in runs]),
        "p99_ms": stat([r.p99_ms for r in runs]),
        "requests": sum(r.requests for r in runs),
        "errors": sum(r.errors for r in runs),
    }


def check(url: str, body: bytes, value_of: Callable[[Any], Any], headers: dict[str, str] | None = None) -> None:
    """One request must answer 2xx with the right value (x=5 -> 11)."""
    r = httpx.post(url, content=body, headers={"content-type": "application/json", **(headers or {})}, timeout=60)
    assert r.is_success and value_of(r.json()) == 11, f"{url}: {r.status_code} {r.text[:500]}"


def ours(value: Any) -> Any:
    """The result's value; kailash-nexus answers in the same shape."""
    return value["outputs"]["add_one"]["result"]["value"]


def measure_both(name: str, url: str, body: bytes, args: argparse.Namespace) -> dict[str, Any]:
    return {f"{name} c={c}": measure(url, body, c, args.seconds, args.reps) for c in (1, 32)}


def nexus_and_noop(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    app = load_app(str(ROOT / "examples" / "quickstart.py"))
    app.settings = Settings(port=free_port())
    info = app.start()
    try:
        serve.run(NoOp.bind(), name="noop", route_prefix="/noop", logging_config=QUIET_LOGS)
        check(info.url + EXECUTE, BODY, ours)
        check(info.url + "/noop/", b"{}", lambda v: 11 if v == {"ok": True} else v)
        results = measure_both("nexus_ray", info.url + EXECUTE, BODY, args)
        results |= measure_both("serve no-op", info.url + "/noop/", b"{}", args)
    finally:
        app.stop()
    return results, info.ingress


def others(args: argparse.Namespace) -> dict[str, Any]:
    """Measured with Ray stopped, so that its idle processes do not share the cores."""
    results: dict[str, Any] = {}
    with serving(bare_fastapi_command) as url:
        check(url + EXECUTE, BODY, ours)
        results |= measure_both("bare FastAPI", url + EXECUTE, BODY, args)
    if not args.skip_kailash:
        with serving(kailash_command) as url:
            check(url + EXECUTE, KAILASH_BODY, ours)
            results |= measure_both("kailash-nexus 2.16", url + EXECUTE, KAILASH_BODY, args)
    return results


def ratios(results: dict[str, Any]) -> dict[str, float]:
    def rps(name: str) -> float:
        return float(results[name]["rps"]["median"])

    out = {f"of serve no-op c={c}": rps(f"nexus_ray c={c}") / rps(f"serve no-op c={c}") for c in (1, 32)}
    out |= {f"of bare FastAPI c={c}": rps(f"nexus_ray c={c}") / rps(f"bare FastAPI c={c}") for c in (1, 32)}
    if "kailash-nexus 2.16 c=32" in results:
        out |= {f"x kailash-nexus c={c}": rps(f"nexus_ray c={c}") / rps(f"kailash-nexus 2.16 c={c}") for c in (1, 32)}
    return {k: round(v, 3) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", help="results file (default benchmarks/results/rest-<date>.json)")
    parser.add_argument("--skip-kailash", action="store_true", help="do not install or measure kailash-nexus")
    args = parser.parse_args()
    results, ingress = nexus_and_noop(args)
    results |= others(args)
    report(results, ingress, args)


def report(results: dict[str, Any], ingress: str, args: argparse.Namespace) -> None:
    ratio = ratios(results)
    print(
        f"\nREST execute double_plus_one — ingress: {ingress}; load: {tool()}; "
        f"{args.reps} x {args.seconds:.0f} s each (median, [min-max]); {machine()}"
    )
    print(f"{'target':<26}{'req/s':>26}{'p50 ms':>24}{'p99 ms':>24}{'errors':>8}")
    for name, r in results.items():
        cells = [f"{r[k]['median']} [{r[k]['min']}-{r[k]['max']}]" for k in ("rps", "p50_ms", "p99_ms")]
        print(f"{name:<26}{cells[0]:>26}{cells[1]:>24}{cells[2]:>24}{r['errors']:>8}")
    print("nexus_ray " + ", ".join(f"{k}: {v}" for k, v in ratio.items()))
    data = {"ingress": ingress, "load": tool(), "machine": machine(), "results": results, "ratios": ratio}
    print(f"written {write_results('rest', data, args.out)}")


if __name__ == "__main__":
    main()
