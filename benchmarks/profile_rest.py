"""Where the time of a REST execute goes: CPU per process and py-spy profiles under load.

    python benchmarks/profile_rest.py [--seconds 10] [--connections 32] [--durable on|off]

Starts the quickstart app, drives ``POST /workflows/double_plus_one/execute`` with wrk
(else httpx) and meanwhile samples, for the ingress replica and the RunHost, a py-spy
profile (``py-spy record --format raw``), and for every process of the tree its CPU use.
Prints each process's CPU share and, per profiled process, the functions with the most
samples on top of the stack (self time) and the project's functions by inclusive time,
leaving out threads waiting in C (see IDLE_LEAVES). The profilers themselves take
CPU from the same 2 cores, so throughput while profiling is lower than in bench_rest.
Writes the raw profiles to benchmarks/results/profile-<name>-<date>.txt. Needs ptrace
(root, or kernel.yama.ptrace_scope=0).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from benchmarks.common import RESULTS, free_port, scratch_dir  # noqa: E402
from benchmarks.loadgen import post_json, tool  # noqa: E402
from nexus_ray import Nexus, Settings  # noqa: E402
from nexus_ray.loader import load_app  # noqa: E402

PROFILED = {"replica": "ServeReplica:nexus", "run host": "RunHost"}
# Leaves where a thread waits in C (py-spy here cannot tell idle threads: it has no native
# unwinding in this build, so --gil and idle detection do not filter them): thread-pool
# workers waiting for work, Ray's C++ core threads, condition waits, the store thread
# waiting for calls.
IDLE_LEAVES = ("_worker (", "Thread.run (", "Condition.wait (", "Worker.main_loop (", " (", "AsyncStore._serve (")


def find(pattern: str) -> psutil.Process:
    for process in psutil.Process().children(recursive=True):
        try:
            if pattern in " ".join(process.cmdline()):
                return process
        except psutil.NoSuchProcess:
            continue
    raise LookupError(f"no process matching {pattern!r}")


def label(process: psutil.Process) -> str:
    try:
        words = " ".join(process.cmdline()).split()
    except psutil.NoSuchProcess:
        return "gone"
    name = words[0] if words else process.name()
    return name.split("/")[-1][:48]


def cpu_shares(seconds: float) -> list[tuple[str, float]]:
    """CPU % of each process of this tree over ``seconds`` (100% = one core)."""
    tree = {process: label(process) for process in [psutil.Process(), *psutil.Process().children(recursive=True)]}
    for process in tree:
        process.cpu_percent(None)
    time.sleep(seconds)
    shares = collections.Counter[str]()
    for process, name in tree.items():
        try:
            shares[name] += process.cpu_percent(None)
        except psutil.NoSuchProcess:
            continue
    return [(name, pct) for name, pct in shares.most_common(8) if pct >= 1]


def record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    command = [py_spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--format", "raw"]
    return subprocess.Popen(
        [*command, "--rate", "200", "-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def summarize(raw: Path, top: int = 12) -> tuple[int, list[tuple[str, float]], list[tuple[str, float]]]:
    """Busy samples; self time and inclusive time (project frames) as shares of them."""
    leaf = collections.Counter[str]()
    inclusive = collections.Counter[str]()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        if _short(frames[-1]).startswith(IDLE_LEAVES):
            continue
        total += n
        leaf[_short(frames[-1])] += n
        for frame in set(frames):
            if "nexus_ray/" in frame:
                inclusive[_short(frame)] += n
    share = lambda c: [(name, n / max(total, 1)) for name, n in c.most_common(top)]  # noqa: E731
    return total, share(leaf), share(inclusive)


def _short(frame: str) -> str:
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").split(":")[0]
    for marker in ("site-packages/", "nexus_ray/", "lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--durable", choices=["on", "off"], default="on")
    args = parser.parse_args()
    app = load_app(str(ROOT / "examples" / "quickstart.py"))
    with scratch_dir("nexus-bench-profile-") as home:
        app.settings = Settings(port=free_port(), durable=args.durable == "on", home=home)
        _profile(app, args)


def _profile(app: Nexus, args: argparse.Namespace) -> None:
    """Load ``app`` over REST while py-spy records its processes; print where time went."""
    info = app.start()
    url = f"{info.url}/workflows/double_plus_one/execute"
    body = json.dumps({"inputs": {"x": 5}}).encode()
    stamp = time.strftime("%Y-%m-%d")
    try:
        post_json(url, body, args.connections, 3)  # warm-up
        load = threading.Thread(target=lambda: results.append(post_json(url, body, args.connections, args.seconds)))
        results: list = []  # type: ignore[type-arg]
        raws = {name: RESULTS / f"profile-{name.replace(' ', '-')}-{stamp}.txt" for name in PROFILED}
        load.start()
        time.sleep(1)
        spies = [record(find(p).pid, args.seconds - 3, raws[n]) for n, p in PROFILED.items()]
        shares = cpu_shares(args.seconds - 3)
        for spy in spies:
            spy.wait()
        load.join()
    finally:
        app.stop()
    r = results[0]
    print(f"\n{args.connections} connections, durable {args.durable}, {tool()}: {r.rps:.0f} req/s, p50 {r.p50_ms} ms")
    print("CPU by process (100% = one core; profilers included):")
    for name, pct in shares:
        print(f"  {pct:6.0f}%  {name}")
    for name, raw in raws.items():
        total, leaf, inclusive = summarize(raw)
        print(f"\n{name}: {total} busy samples (idle waits left out); self time")
        for frame, share in leaf:
            print(f"  {share:6.1%}  {frame}")
        print(f"{name}: inclusive time of nexus_ray functions")
        for frame, share in inclusive:
            print(f"  {share:6.1%}  {frame}")
        print(f"raw profile: {raw.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
