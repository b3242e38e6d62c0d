"""Load generators: wrk when installed, else an httpx closed-loop generator. Loopback only."""

from __future__ import annotations

import asyncio
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class LoadResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def post_json(
    url: str, body: bytes, connections: int, seconds: float, headers: dict[str, str] | None = None
) -> LoadResult:
    """POST ``body`` (with ``headers``) to ``url`` from ``connections`` keep-alive
    connections for ``seconds``."""
    return load("POST", url, body, connections, seconds, headers)


def load(
    method: str, url: str, body: bytes | None, connections: int, seconds: float, headers: dict[str, str] | None = None
) -> LoadResult:
    """``method`` (with a JSON ``body``, or none) to ``url`` from ``connections`` keep-alive
    connections for ``seconds``: wrk when installed, else httpx."""
    assert url.startswith("http://127.0.0.1"), "benchmarks only target loopback"
    if shutil.which("wrk"):
        return _wrk(method, url, body, connections, seconds, headers or {})
    return asyncio.run(_httpx(method, url, body, connections, seconds, headers or {}))


def _lua(method: str, body: bytes | None, headers: dict[str, str]) -> str:
    if body is not None:
        headers = {"Content-Type": "application/json", **headers}
    lines = [f'wrk.method = "{method}"', *(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())]
    if body is not None:
        lines.append(f"wrk.body = [[{body.decode()}]]")
    return "\n".join(lines) + "\n"


def _wrk(
    method: str, url: str, body: bytes | None, connections: int, seconds: float, headers: dict[str, str]
) -> LoadResult:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(method, body, headers))
    threads = min(connections, 2)
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            script.name,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    Path(script.name).unlink()
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return LoadResult(rps, _wrk_pct(out, "50"), _wrk_pct(out, "99"), total, errors)


def _wrk_pct(out: str, pct: str) -> float:
    match = re.search(rf"^\s+{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    assert match, out
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


async def _httpx(
    method: str, url: str, body: bytes | None, connections: int, seconds: float, headers: dict[str, str]
) -> LoadResult:
    if body is not None:
        headers = {"content-type": "application/json", **headers}
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                r = await client.request(method, url, content=body, headers=headers)
                latencies.append((time.perf_counter() - started) * 1000)
                errors += not r.is_success

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] if latencies else 0.0
    return LoadResult(len(latencies) / elapsed, statistics.median(latencies), p99, len(latencies), errors)


def tool() -> str:
    """Which generator runs."""
    return "wrk" if shutil.which("wrk") else "httpx"
