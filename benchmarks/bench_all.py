"""``make bench``: every benchmark in one go, one table, one results file.

    python benchmarks/bench_all.py [--quick] [--skip-kailash]

Runs each benchmark script in its own process (each starts and stops its own embedded
Ray), collects their JSON, prints one table of every figure with its target, and writes
benchmarks/results/<date>.json. Figures are medians of 3 repetitions with [min-max].
--quick shortens every measurement (for a smoke run; not for the README).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import RESULTS, interval_text, machine, shows_at_least  # noqa: E402
from benchmarks.loadgen import tool  # noqa: E402

# script, its arguments (full, quick), time limit in seconds
BENCHES: dict[str, tuple[list[str], list[str], int]] = {
    "rest": (["--seconds", "5"], ["--seconds", "2", "--reps", "1"], 900),
    "runs": ([], ["--seconds", "2", "--reps", "1", "--runs", "200"], 600),
    "sessions": ([], ["--seconds", "2", "--reps", "1", "--sessions", "10000"], 600),
    "mcp": ([], ["--calls", "50", "--reps", "1"], 300),
    "startup": ([], ["--reps", "1", "--idle-s", "3"], 600),
    "events": ([], ["--updates", "100", "--reps", "1"], 300),
    "cli": ([], ["--reps", "3"], 300),
    "security": ([], ["--seconds", "2", "--reps", "1"], 600),
    "scaling": ([], [], 900),
}


@dataclass
class Row:
    """One figure of the table."""

    section: str
    figure: str
    value: str
    target: str = ""
    met: bool | None = None


def run_bench(name: str, quick: bool, skip_kailash: bool, outdir: Path) -> dict[str, Any]:
    full, short, limit = BENCHES[name]
    out = outdir / f"{name}.json"
    args = [
        sys.executable,
        str(ROOT / "benchmarks" / f"bench_{name}.py"),
        *(short if quick else full),
        "--out",
        str(out),
    ]
    if name == "rest" and skip_kailash:
        args.append("--skip-kailash")
    print(f"== bench_{name} ...", flush=True)
    started = time.monotonic()
    try:
        subprocess.run(args, cwd=ROOT, check=True, timeout=limit)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        print(f"== bench_{name} FAILED: {exc}", flush=True)
        return {"error": str(exc)}
    print(f"== bench_{name}: {time.monotonic() - started:.0f} s", flush=True)
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def cell(s: dict[str, float], unit: str = "") -> str:
    return f"{_num(s['median'])}{unit} [{_num(s['min'])}-{_num(s['max'])}]"


def _num(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:g}"


def rest_rows(data: dict[str, Any]) -> list[Row]:
    results, ratios = data["results"], data["ratios"]
    rows = []
    for target, r in results.items():
        value = f"{cell(r['rps'])} req/s; p50 {cell(r['p50_ms'])} ms; p99 {cell(r['p99_ms'])} ms"
        if r["errors"]:
            value += f"; {r['errors']} errors"
        rows.append(Row("1 REST execute", target, value))
    p50 = results["nexus_ray c=1"]["p50_ms"]["median"]
    rows.append(Row("1 REST execute", "nexus_ray p50 at c=1", f"{p50} ms", "<= 5 ms", p50 <= 5))
    for name, ratio in ratios.items():
        target, met = "", None
        if name == "of serve no-op c=32":
            target, met = ">= 50%", ratio >= 0.5
        if name == "x kailash-nexus c=32":
            target, met = ">= 20x", ratio >= 20
        shown = f"{ratio:.1f}x" if name.startswith("x ") else f"{ratio:.0%}"
        rows.append(Row("1 REST execute", f"nexus_ray {name}", shown, target, met))
    return rows


def runs_rows(data: dict[str, Any]) -> list[Row]:
    ckpt, burst = data["checkpointing"], data["concurrent_sleep_runs"]
    interval = ckpt.get("interval")  # absent with one pair (--reps 1): no verdict then
    return [
        Row("2 Durable", "checkpointing off, c=32", f"{cell(ckpt['off'])} req/s"),
        Row("2 Durable", "checkpointing on, c=32", f"{cell(ckpt['on'])} req/s"),
        Row("2 Durable", "on / off, ratio of medians", f"{ckpt['ratio']:.0%}"),
        Row(
            "2 Durable",
            "on / off, pairs' geometric mean",
            interval_text(interval) if interval else "one pair: no interval",
            ">= 80% (95% interval)",
            shows_at_least(interval, 0.8) if interval else None,
        ),
        *(
            [Row("2 Durable", "store work per durable run, in process", f"{cell(inproc['store_us_per_run'])} us")]
            if (inproc := data.get("in_process"))
            else []
        ),
        *(
            Row("2 Durable", f"c={c}: off / on", f"{cell(f['off'])} / {cell(f['on'])} req/s ({f['ratio']:.0%})")
            for c, f in ckpt.get("by_connections", {}).items()
            if c != "32"
        ),
        Row(
            "4 Concurrent runs",
            f"{burst['runs']} runs of 1 s, Python API",
            f"{cell(burst['python'])} s",
            "<= 3 s",
            burst["python"]["median"] <= 3,
        ),
        Row(
            "4 Concurrent runs", f"{burst['runs']} runs of 1 s, REST async + polling", f"{cell(burst['rest_async'])} s"
        ),
    ]


def sessions_rows(data: dict[str, Any]) -> list[Row]:
    rows = []
    for channel, target in (("python_ops", 10_000), ("rest_ops", 2_000)):
        for op, s in data[channel].items():
            label = f"{channel.split('_')[0].replace('python', 'Python').replace('rest', 'REST')} {op}"
            rows.append(Row("3 Sessions", label, f"{cell(s)} ops/s", f">= {target:,}", s["median"] >= target))
    mem = data["memory"]
    count = int(mem["sessions"]["median"])
    rows.append(
        Row(
            "3 Sessions",
            f"SessionHost RSS with {count:,} sessions",
            f"{cell(mem['rss_mb'])} MB",
            "<= 1 GB",
            mem["rss_mb"]["median"] <= 1024,
        )
    )
    return rows


def mcp_rows(data: dict[str, Any]) -> list[Row]:
    diff = data["difference_ms"]
    return [
        Row("5 MCP", "REST p50 (sequential)", f"{cell(data['rest_p50_ms'])} ms"),
        Row("5 MCP", "MCP tool call p50 (sequential)", f"{cell(data['mcp_p50_ms'])} ms"),
        Row("5 MCP", "MCP - REST", f"{diff:+.2f} ms", "<= 2 ms", diff <= 2),
    ]


def startup_rows(data: dict[str, Any]) -> list[Row]:
    return [
        Row("6 Start-up", "nexus serve: cold start to first 2xx", f"{cell(data['cold_start_s'])} s"),
        Row("6 Start-up", f"idle process tree RSS ({data['processes']} processes)", f"{cell(data['idle_rss_mb'])} MB"),
        Row("6 Start-up", "idle process tree PSS", f"{cell(data['idle_pss_mb'])} MB"),
    ]


def events_rows(data: dict[str, Any]) -> list[Row]:
    label = f"{data['subscribers']} WS subscribers, {data['updates']} updates: delivery"
    p99 = data["p99_ms"]["median"]
    return [
        Row("7 Events", label, f"p50 {cell(data['p50_ms'])} ms; p99 {cell(data['p99_ms'])} ms", "p99 < 50 ms", p99 < 50)
    ]


def cli_rows(data: dict[str, Any]) -> list[Row]:
    helps, runs = data["help_ms"], data["run_ms"]
    return [
        Row("8 CLI", "nexus --help", f"{cell(helps)} ms", "< 300 ms", helps["median"] < 300),
        Row("8 CLI", "nexus run (server running)", f"{cell(runs)} ms", "< 500 ms", runs["median"] < 500),
    ]


def security_rows(data: dict[str, Any]) -> list[Row]:
    rows = []
    for mode, by_conns in data["results"].items():
        for conns, r in by_conns.items():
            rows.append(Row("9 Security", f"{mode}, {conns}", f"{cell(r['rps'])} req/s; p50 {cell(r['p50_ms'])} ms"))
    for mode, ratio in data["ratio_of_auth_off_c32"].items():
        if mode != "auth off":
            rows.append(Row("9 Security", f"{mode} / auth off, c=32", f"{ratio:.0%}"))
    return rows


def scaling_rows(data: dict[str, Any]) -> list[Row]:
    summary = data["summary"]
    shown = {
        "serve": ("Serve ingress replicas 1 → 3 → 1", ["to_2_replicas_s", "to_3_replicas_s", "back_to_1_s"]),
        "pools": (
            "host pools 1 → 3 → 1",
            ["run_hosts_to_2_s", "run_hosts_to_3_s", "run_hosts_back_to_1_after_runs_end_s", "session_hosts_to_2_s"],
        ),
        "nodes": ("fake cluster nodes 0 → 3 → 0", ["first_node_s", "max_nodes_s", "nodes_gone_after_runs_end_s"]),
    }
    rows = []
    for part, (label, keys) in shown.items():
        if part not in summary:
            rows.append(Row("10 Scaling", label, "did not scale within the time limit"))
            continue
        value = "; ".join(
            f"{key.removesuffix('_s').replace('_', ' ')} {summary[part][key]['median']} s" for key in keys
        )
        rows.append(Row("10 Scaling", label, value))
    return rows


ROWS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "rest": rest_rows,
    "runs": runs_rows,
    "sessions": sessions_rows,
    "mcp": mcp_rows,
    "startup": startup_rows,
    "events": events_rows,
    "cli": cli_rows,
    "security": security_rows,
    "scaling": scaling_rows,
}


def print_table(rows: list[Row]) -> None:
    width = max(len(r.figure) for r in rows) + 2
    section = ""
    for row in rows:
        if row.section != section:
            section = row.section
            print(f"\n{section}")
        mark = "" if row.met is None else ("  ok" if row.met else "  MISSED")
        target = f"  (target {row.target})" if row.target else ""
        print(f"  {row.figure:<{width}}{row.value}{target}{mark}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short measurements (smoke run)")
    parser.add_argument("--skip-kailash", action="store_true", help="do not install or measure kailash-nexus")
    parser.add_argument("--only", nargs="*", choices=list(BENCHES), help="run only these")
    args = parser.parse_args()
    started = time.monotonic()
    data: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="nexus-bench-") as outdir:
        for name in args.only or BENCHES:
            data[name] = run_bench(name, args.quick, args.skip_kailash, Path(outdir))
    failed = {name: figures["error"] for name, figures in data.items() if "error" in figures}
    rows = sorted(
        (row for name, figures in data.items() if name not in failed for row in ROWS[name](figures)),
        key=lambda r: r.section,
    )
    print(f"\nnexus_ray benchmarks — {machine()}; load: {tool()}; median [min-max] of repetitions")
    print_table(rows)
    missed = [r.figure for r in rows if r.met is False]
    print(f"\n{len(rows)} figures, {sum(r.met is True for r in rows)} targets met, {len(missed)} missed")
    for name, error in failed.items():
        print(f"bench_{name} FAILED (no figures): {error}")
    out = RESULTS / (f"{time.strftime('%Y-%m-%d')}{'-quick' if args.quick else ''}.json")
    summary = {
        "machine": machine(),
        "load": tool(),
        "quick": args.quick,
        "wall_s": round(time.monotonic() - started),
        "rows": [r.__dict__ for r in rows],
        "failed": failed,
        "raw": data,
    }
    out.write_text(json.dumps(summary, indent=2))
    print(f"written {out.relative_to(ROOT)} in {summary['wall_s']} s")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
