"""A node whose async code ignores its cancellation (catches CancelledError and goes on)
does not hold up a node timeout, a cancel, a run timeout or a sibling's failure, and what
it does afterwards is discarded: no late completion, retry or event."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

import nexus_ray
from nexus_ray import NodePolicy
from nexus_ray.runtime.run_service import RunService
from nexus_ray.store import Store
from nexus_ray.store.backends import SQLiteBackend
from nexus_ray.workflow import WorkflowBuilder, WorkflowEngine, stopping

GRACE_S = 0.2
ATTEMPTS: list[int] = []


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stopping, "STOP_GRACE_S", GRACE_S)
    ATTEMPTS.clear()


async def stubborn(seconds: float, fail: bool = False) -> int:
    """Runs ``seconds`` whatever happens (as a retry loop that catches CancelledError does),
    then reports, and fails or returns."""
    ATTEMPTS.append(1)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.01)
    nexus_ray.progress(1.0, "too late")
    nexus_ray.emit("late", {})
    if fail:
        raise ConnectionError("failed after ignoring its cancellation")
    return 1


def fails_at_once() -> int:
    raise ValueError("boom")


RETRIED = NodePolicy(retries=3, retry_on=(ConnectionError,), backoff_s=0)


def durable(tmp_path: Path, **workflows: WorkflowBuilder) -> RunService:
    built = {name: b.build() for name, b in workflows.items()}
    return RunService("h0", built, store_factory=lambda: Store(SQLiteBackend(tmp_path / "s.db")))


async def stored_types(svc: RunService, run_id: str) -> list[str]:
    return [e["type"] for e in await svc.store.call("list_events", "run", run_id)]  # type: ignore[union-attr]


async def test_a_node_that_ignores_its_timeout_fails_when_its_grace_ends_not_when_it_likes() -> None:
    wf = WorkflowBuilder().add_node(stubborn, "s", policy=NodePolicy(timeout_s=0.1)).build()
    started = time.perf_counter()
    outcome = await WorkflowEngine().execute(wf, wf.resolve_inputs({"seconds": 1.5}), run_id="r")
    elapsed = time.perf_counter() - started
    # it would have returned 1 after 1.5 s; the timeout is what counts
    assert outcome.status == "failed" and outcome.error is not None
    assert outcome.error["type"] == "NodeTimeoutError"
    assert elapsed < 0.1 + GRACE_S + 0.5, elapsed


async def test_cancelling_a_run_does_not_wait_for_a_node_that_ignores_it(tmp_path: Path) -> None:
    svc = durable(tmp_path, s=WorkflowBuilder().add_node(stubborn, "s", policy=RETRIED))
    running = asyncio.ensure_future(svc.execute("s", {"s": {"seconds": 1.0, "fail": True}}, "r-c"))
    await asyncio.sleep(0.1)
    started = time.perf_counter()
    cancelled = await svc.cancel("r-c")
    assert cancelled["status"] == "cancelled"
    assert time.perf_counter() - started < GRACE_S + 0.5
    assert (await running)["status"] == "cancelled"
    await asyncio.sleep(1.2)  # the node ran on, reported, and failed with a retryable error
    assert ATTEMPTS == [1]  # a cancelled run's node is not tried again
    assert (await stored_types(svc, "r-c"))[-1] == "run.cancelled"
    assert (await svc.get_run("r-c"))["status"] == "cancelled"
    svc.close()


async def test_a_run_timeout_does_not_wait_for_a_node_that_ignores_it(tmp_path: Path) -> None:
    svc = durable(tmp_path, s=WorkflowBuilder(timeout_s=0.1).add_node(stubborn, "s"))
    started = time.perf_counter()
    result = await svc.execute("s", {"s": {"seconds": 1.5}}, "r-t")
    assert result["status"] == "failed" and result["error"]["type"] == "RunTimeoutError"
    assert time.perf_counter() - started < 0.1 + GRACE_S + 0.5
    svc.close()


async def test_a_failure_does_not_wait_for_a_sibling_that_ignores_its_cancellation(tmp_path: Path) -> None:
    flow = WorkflowBuilder().add_node(stubborn, "s").add_node(fails_at_once, "f")
    svc = durable(tmp_path, both=flow)
    started = time.perf_counter()
    result = await svc.execute("both", {"s": {"seconds": 1.0}}, "r-f")
    assert result["status"] == "failed" and result["error"]["node"] == "f"
    assert result["nodes"]["s"]["status"] == "cancelled"
    assert time.perf_counter() - started < GRACE_S + 0.5
    await asyncio.sleep(1.0)  # the sibling finished meanwhile, reporting as it went
    types = await stored_types(svc, "r-f")
    assert types[-1] == "run.failed" and "late" not in types and "node.progress" not in types
    svc.close()


async def test_a_node_that_stops_when_cancelled_is_waited_for() -> None:
    """The grace is for nodes that ignore cancellation: a cleanup that takes a moment runs
    to its end before the run reports its end."""
    cleaned: list[str] = []

    async def tidy() -> int:
        try:
            await asyncio.sleep(5)
        finally:
            await asyncio.sleep(0.05)
            cleaned.append("done")
        return 1

    wf = WorkflowBuilder().add_node(tidy, "t").add_node(fails_at_once, "f").build()
    outcome = await WorkflowEngine().execute(wf, wf.resolve_inputs({}), run_id="r")
    assert outcome.status == "failed" and cleaned == ["done"] and stopping.left_behind() == 0
