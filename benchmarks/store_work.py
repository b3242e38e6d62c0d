"""What checkpointing costs a RunHost, in process (no Ray, no HTTP): the store's work per
durable run, runs/s of one RunService with and without a store, and how long a batch of
16 runs takes it with and without a store (what the REST figure at 32 connections
follows, see ``batch_ms``).

    python benchmarks/store_work.py

The store work is the 8 rows of a durable 2-node run (the run with its inputs; 6 events:
run.started, each node's started and completed, which are its checkpoints, and the
run's end; the final status) written in the three group commits a run waits for, 32 runs
per group, on a fresh SQLite store. Part of ``bench_runs.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_session_logs import session_expiry, session_log_retention  # noqa: E402
from benchmarks.common import run_like_a_host, scratch_dir, stat  # noqa: E402
from nexus_ray.runtime.ids import new_run_id  # noqa: E402
from nexus_ray.runtime.run_service import RunService  # noqa: E402
from nexus_ray.store import Store  # noqa: E402
from nexus_ray.store.backends import SQLiteBackend  # noqa: E402
from nexus_ray.testing.sample import double_plus_one  # noqa: E402
from nexus_ray.workflow import NodeStatus, RunStatus  # noqa: E402
from nexus_ray.workflow.events import node_event  # noqa: E402

DEFINITION = double_plus_one().fingerprints  # the node digests a host records with each run


def _node(store: Store, run_id: str, node: str, value: int) -> None:
    """A node's start and completion, as a host records them (its node.* events)."""
    store.append_event("run", run_id, *node_event(node, NodeStatus.RUNNING))
    outputs = {"result": {"value": value}}
    store.append_event("run", run_id, *node_event(node, NodeStatus.COMPLETED, outputs=outputs, duration_ms=0.1))


def _group_of_runs(store: Store, runs: int) -> None:
    ids = [new_run_id() for _ in range(runs)]
    with store.transaction(write=True):
        for run_id in ids:
            store.create_run(
                run_id, "double_plus_one", {"double": {"x": 5}}, owner="bench", lease_s=10, definition=DEFINITION
            )
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
    with scratch_dir("nexus-bench-") as home, contextlib.closing(Store(SQLiteBackend(home / "nexus.db"))) as store:
        for _ in range(20):
            _group_of_runs(store, runs_per_group)
        per_run = []
        for _ in range(reps):
            started = time.perf_counter()
            for _ in range(groups):
                _group_of_runs(store, runs_per_group)
            per_run.append((time.perf_counter() - started) / (groups * runs_per_group) * 1e6)
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


@contextlib.contextmanager
def _service(durable: bool) -> Iterator[RunService]:
    """A RunService hosting double_plus_one, with a fresh SQLite store when ``durable``
    (closed and removed afterwards)."""
    with scratch_dir("nexus-bench-") as home:
        factory = (lambda: Store(SQLiteBackend(home / "nexus.db"))) if durable else None
        service = RunService("bench", {"double_plus_one": double_plus_one()}, store_factory=factory)
        try:
            yield service
        finally:
            service.close()


async def _run_batch(service: RunService, inputs: dict[str, dict[str, Any]], size: int) -> None:
    runs = (service.execute("double_plus_one", inputs, new_run_id()) for _ in range(size))
    for result in await asyncio.gather(*runs):
        assert result["status"] == "completed", result


def batch_ms(durable: bool, batches: int = 400, size: int = 16, between_ms: float = 3.0) -> dict[str, float]:
    """Median ms one RunService takes for ``size`` runs started together, one batch after
    another, with ``between_ms`` of busy loop between batches.

    This is how a RunHost sees REST at 32 connections: batches of 16 runs, the next one
    only after this one's replies (the ingress keeps one batch in flight). The median of
    hundreds of batches varies far less than REST req/s on this machine, and it shows the
    cost that counts there: the latency of a batch's three commits, not their CPU."""

    async def measure(service: RunService) -> list[float]:
        inputs = service.workflows["double_plus_one"].resolve_inputs({"x": 1})
        took = []
        for _ in range(batches + 50):  # the first 50 warm up
            started = time.perf_counter()
            await _run_batch(service, inputs, size)
            took.append((time.perf_counter() - started) * 1000)
            until = time.perf_counter() + between_ms / 1000
            while time.perf_counter() < until:  # the ingress's turn: the loop is busy, not idle
                pass
            await asyncio.sleep(0)
        return took[50:]

    with _service(durable) as service:
        return stat(run_like_a_host(measure(service)), 2)


def in_process(durable: bool, runs: int = 4000, reps: int = 3) -> dict[str, float]:
    """Runs/s of one RunService (32 at a time), with or without a SQLite store."""

    async def measure(service: RunService) -> list[float]:
        await _runs_per_s(service, 500, 32)  # warm-up
        return [await _runs_per_s(service, runs, 32) for _ in range(reps)]

    with _service(durable) as service:
        return stat(run_like_a_host(measure(service)), 0)


def retention(groups: int = 1000, runs_per_group: int = 32, chunk: int = 200) -> dict[str, Any]:
    """What run retention works against: bytes a durable 2-node run adds to a SQLite store
    (its WAL checkpointed), and ms per ``purge_finished_runs`` chunk deleting them all."""
    with scratch_dir("nexus-bench-") as home:
        return _retention_in(home / "nexus.db", groups, runs_per_group, chunk)


def _retention_in(path: Path, groups: int, runs_per_group: int, chunk: int) -> dict[str, Any]:
    store = Store(SQLiteBackend(path))

    def size() -> int:
        """The database's size once its WAL is checkpointed and emptied. A checkpoint that
        the store's own checkpointer thread holds up reports busy (and left the WAL, whose
        frames are whole pages written again and again, in the figure: 7.7 KB a run
        instead of 1.5) so it is tried until it is done."""
        with contextlib.closing(sqlite3.connect(path)) as other:
            for _ in range(100):
                busy, _, _ = other.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                if not busy and Path(f"{path}-wal").stat().st_size == 0:
                    return path.stat().st_size
                time.sleep(0.1)
        raise RuntimeError("the WAL could not be checkpointed within 10 s")

    try:
        empty = size()
        for _ in range(groups):
            _group_of_runs(store, runs_per_group)
        per_run = (size() - empty) / (groups * runs_per_group)
        took = []
        while True:  # a cutoff after every run: all of them go
            started = time.perf_counter()
            deleted = store.purge_finished_runs(time.time() + 10, chunk)
            took.append((time.perf_counter() - started) * 1000)
            if deleted < chunk:
                break
        return {"bytes_per_run": round(per_run), "purge_chunk_ms": stat(took, 1), "chunk": chunk}
    finally:
        store.close()


def measure_all() -> dict[str, Any]:
    """Every figure of this module."""
    off, on = in_process(False), in_process(True)
    batch_off, batch_on = batch_ms(False), batch_ms(True)
    return {
        "store_us_per_run": store_work_us(),
        "run_service_off": off,
        "run_service_on": on,
        "run_service_ratio": round(on["median"] / off["median"], 3),
        "batch_of_16_ms_off": batch_off,
        "batch_of_16_ms_on": batch_on,
        "retention": retention(),
        "session_log_retention": session_log_retention(),  # bench_session_logs.py
        "session_expiry": session_expiry(),
    }


if __name__ == "__main__":
    figures = measure_all()
    print(f"store work per durable run: {figures['store_us_per_run']} us")
    off, on = figures["run_service_off"], figures["run_service_on"]
    print(f"one RunService, 32 at a time: off {off} runs/s, on {on} runs/s")
    print(f"a batch of 16 runs: off {figures['batch_of_16_ms_off']} ms, on {figures['batch_of_16_ms_on']} ms")
    kept = figures["retention"]
    purge = f"purging {kept['chunk']} runs: {kept['purge_chunk_ms']} ms"
    print(f"a durable run in SQLite: {kept['bytes_per_run']} bytes; {purge}")
    logs = figures["session_log_retention"]
    print(f"trimming 20,000 old session logs, {logs['chunk']} a call: {logs['trim']}; again: {logs['again']}")
    expiry = figures["session_expiry"]
    print(f"purging 20,000 expired sessions, {expiry['chunk']} a call: {expiry['purge']}")
