"""What checkpointing costs a RunHost, in process (no Ray, no HTTP): the store's work per
durable run, and runs/s of one RunService with and without a store.

    python benchmarks/store_work.py

The store work is the 8 rows of a durable 2-node run (the run with its inputs; 6 events:
run.started, each node's started and completed, which are its checkpoints, and the
run's end; the final status) written in the three group commits a run waits for, 32 runs
per group, on a fresh SQLite store. Part of ``bench_runs.py``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import stat  # noqa: E402
from nexus_ray.runtime.ids import new_run_id  # noqa: E402
from nexus_ray.runtime.run_service import RunService  # noqa: E402
from nexus_ray.store import Store  # noqa: E402
from nexus_ray.store.backends import SQLiteBackend  # noqa: E402
from nexus_ray.testing.sample import double_plus_one  # noqa: E402
from nexus_ray.workflow import NodeStatus, RunStatus  # noqa: E402
from nexus_ray.workflow.events import node_event  # noqa: E402


def _node(store: Store, run_id: str, node: str, value: int) -> None:
    """A node's start and completion, as a host records them (its node.* events)."""
    store.append_event("run", run_id, *node_event(node, NodeStatus.RUNNING))
    outputs = {"result": {"value": value}}
    store.append_event("run", run_id, *node_event(node, NodeStatus.COMPLETED, outputs=outputs, duration_ms=0.1))


def _group_of_runs(store: Store, runs: int) -> None:
    ids = [new_run_id() for _ in range(runs)]
    with store.transaction(write=True):
        for run_id in ids:
            store.create_run(run_id, "double_plus_one", {"double": {"x": 5}}, owner="bench", lease_s=10)
    with store.transaction(write=True):
        for run_id in ids:
            _node(store, run_id, "double", 10)
    with store.transaction(write=True):
        for run_id in ids:
            _node(store, run_id, "add_one", 11)
            store.finish_run(run_id, RunStatus.COMPLETED, {"add_one": {"result": {"value": 11}}}, None)
    store.appended.clear()


def store_work_us(groups: int = 200, runs_per_group: int = 32, reps: int = 3) -> dict[str, float]:
    """Microseconds of store work per durable run (median of ``reps``)."""
    store = Store(SQLiteBackend(Path(tempfile.mkdtemp(prefix="nexus-bench-")) / "nexus.db"))
    for _ in range(20):
        _group_of_runs(store, runs_per_group)
    per_run = []
    for _ in range(reps):
        started = time.perf_counter()
        for _ in range(groups):
            _group_of_runs(store, runs_per_group)
        per_run.append((time.perf_counter() - started) / (groups * runs_per_group) * 1e6)
    store.close()
    return stat(per_run, 1)


async def _runs_per_s(service: RunService, runs: int, concurrency: int) -> float:
    workflow = service.workflows["double_plus_one"]
    inputs = workflow.resolve_inputs({"x": 1})
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            result = await service.execute("double_plus_one", inputs, new_run_id())
            assert result["status"] == "completed", result

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(runs)))
    return runs / (time.perf_counter() - started)


def in_process(durable: bool, runs: int = 4000, reps: int = 3) -> dict[str, float]:
    """Runs/s of one RunService (32 at a time), with or without a SQLite store."""
    path = Path(tempfile.mkdtemp(prefix="nexus-bench-")) / "nexus.db"
    factory = (lambda: Store(SQLiteBackend(path))) if durable else None
    service = RunService("bench", {"double_plus_one": double_plus_one()}, store_factory=factory)

    async def measure() -> list[float]:
        await _runs_per_s(service, 500, 32)  # warm-up
        return [await _runs_per_s(service, runs, 32) for _ in range(reps)]

    try:
        return stat(asyncio.run(measure()), 0)
    finally:
        service.close()


def measure_all() -> dict[str, Any]:
    """Every figure of this module."""
    off, on = in_process(False), in_process(True)
    return {
        "store_us_per_run": store_work_us(),
        "run_service_off": off,
        "run_service_on": on,
        "run_service_ratio": round(on["median"] / off["median"], 3),
    }


if __name__ == "__main__":
    figures = measure_all()
    print(f"store work per durable run: {figures['store_us_per_run']} us")
    off, on = figures["run_service_off"], figures["run_service_on"]
    print(f"one RunService, 32 at a time: off {off} runs/s, on {on} runs/s")
