"""Helpers shared by the benchmarks: ports, scratch dirs, summary statistics, machine,
results files."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import platform
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from nexus_ray.testing import free_port

if TYPE_CHECKING:
    from nexus_ray import Nexus

__all__ = ["free_port"]  # re-exported for the benchmarks
T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A fresh temp dir (a store, an app's home) removed when the block ends, also on an
    error. The benchmarks used to leave every store they wrote in /tmp: a few hundred
    runs of them had left 18 GB there on this machine."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def started(app: Nexus, prefix: str, **settings: Any) -> Iterator[str]:
    """``app`` started on a free loopback port with a fresh home in a :func:`scratch_dir`
    (``settings`` on top: ``durable=False``, ``ingress=...``); its URL. Stopped, and its
    home removed, when the block ends."""
    from nexus_ray import Settings

    with scratch_dir(prefix) as home:
        app.settings = Settings(port=free_port(), home=home, **settings)
        info = app.start()
        try:
            yield info.url
        finally:
            app.stop()


def run_like_a_host(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the kind of event loop a RunHost has: Ray gives its async actors
    uvloop when it is installed (and RAY_USE_UVLOOP is not 0), and there a durable batch
    took 4.1 ms against 6.3 ms on asyncio's own loop (2.2 / 3.3 ms without a store)."""
    if os.environ.get("RAY_USE_UVLOOP", "1").lower() in ("0", "false", "no"):
        return asyncio.run(coro)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def stat(values: list[float], digits: int = 2) -> dict[str, float]:
    """Median, min and max of repeated measurements."""
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def ratio_interval(ratios: list[float], resamples: int = 10_000, seed: int = 0) -> dict[str, float]:
    """The geometric mean of paired ratios (on / off of each pair) and its 95% bootstrap
    interval (percentiles of ``resamples`` resampled means, from a fixed ``seed``).

    One run's ratio of medians swings by 20 points here (single pairs by twice that), so a target
    on a ratio is judged by this interval, not by one run. Ratios multiply, hence logs."""
    if len(ratios) < 2 or min(ratios) <= 0:
        raise ValueError(f"need two or more positive ratios, got {ratios!r}")
    logs = [math.log(r) for r in ratios]
    rng = random.Random(seed)
    means = sorted(statistics.fmean(rng.choices(logs, k=len(logs))) for _ in range(resamples))
    low, high = means[int(0.025 * resamples)], means[int(0.975 * resamples) - 1]
    return {
        "gmean": round(math.exp(statistics.fmean(logs)), 3),
        "low": round(math.exp(low), 3),
        "high": round(math.exp(high), 3),
        "pairs": len(ratios),
    }


def interval_text(interval: dict[str, float]) -> str:
    """``ratio_interval``'s figures in words: "82% (95% interval 79-86%, 49 pairs)"."""
    gmean, low, high, pairs = (interval[k] for k in ("gmean", "low", "high", "pairs"))
    return f"{gmean:.0%} (95% interval {low * 100:.0f}-{high:.0%}, {pairs:.0f} pairs)"


def shows_at_least(interval: dict[str, float], target: float) -> bool:
    """Whether the pairs show the ratio is at least ``target``: all of the 95% interval is."""
    return interval["low"] >= target


def machine() -> str:
    """This machine, in one line."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        model = f"{names[0]}, " if names else ""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}{os.cpu_count()} cores, {memory:.0f} GB, {platform.system()}, Python {platform.python_version()}"


def write_results(name: str, data: dict[str, Any], out: str | None) -> Path:
    """Write ``data`` to ``out`` (default benchmarks/results/<name>-<date>.json)."""
    path = Path(out) if out else RESULTS / f"{name}-{time.strftime('%Y-%m-%d')}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2))
    return path
