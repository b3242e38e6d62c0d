"""What security costs on the request path: REST execute of double_plus_one with auth off
(the default), with auth on (a JWT checked on every request, RBAC, tenant-scoped ids) and
the audit trail, and with a rate limit on top.

    python benchmarks/bench_security.py [--seconds 5] [--reps 3] [--out FILE]

Each setting starts the quickstart app afresh; wrk (else httpx) at 1 and 32 keep-alive
connections; every answer must be 2xx. Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jwt  # noqa: E402

from benchmarks.bench_rest import EXECUTE, check, measure, ours  # noqa: E402
from benchmarks.common import machine, started, write_results  # noqa: E402
from benchmarks.loadgen import tool  # noqa: E402
from nexus_ray.loader import load_app  # noqa: E402

SECRET = "bench-secret-" + "b" * 32
MODES: dict[str, dict[str, Any]] = {
    "auth off": {},
    "auth on (JWT) + audit": {"env": "production", "jwt_secret": SECRET},
    "auth on + audit + rate limit": {"env": "production", "jwt_secret": SECRET, "rate_limit": "100000000/minute"},
}


def one_mode(options: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    app = load_app(str(ROOT / "examples" / "quickstart.py"))
    claims = {"sub": "bench", "tenant": "acme", "roles": ["admin"], "exp": time.time() + 3600}
    headers = {"Authorization": f"Bearer {jwt.encode(claims, SECRET, 'HS256')}"} if options else {}
    body = json.dumps({"inputs": {"x": 5}}).encode()
    with started(app, "nexus-bench-sec-", **options) as url:
        check(url + EXECUTE, body, ours, headers)
        return {f"c={c}": measure(url + EXECUTE, body, c, args.seconds, args.reps, headers) for c in (1, 32)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out", help="results file (default benchmarks/results/security-<date>.json)")
    args = parser.parse_args()
    results = {mode: one_mode(options, args) for mode, options in MODES.items()}
    print(f"\nREST execute double_plus_one by security setting; {tool()}; median [min-max] of {args.reps}; {machine()}")
    for mode, by_conns in results.items():
        for conns, r in by_conns.items():
            rps, p50 = r["rps"], r["p50_ms"]
            print(
                f"  {mode:<30} {conns:<5} {rps['median']:>8} req/s [{rps['min']}-{rps['max']}]  p50 {p50['median']} ms"
            )
    base = results["auth off"]["c=32"]["rps"]["median"]
    ratios = {mode: round(r["c=32"]["rps"]["median"] / base, 3) for mode, r in results.items()}
    print("  at 32 connections, of auth off: " + ", ".join(f"{m}: {v:.0%}" for m, v in ratios.items()))
    data = {"load": tool(), "machine": machine(), "results": results, "ratio_of_auth_off_c32": ratios}
    print(f"written {write_results('security', data, args.out)}")


if __name__ == "__main__":
    main()
