"""Run and session events in-process: what a run emits, in order, persisted with each
change; long polls that wait without polling; the hub that fans one poll out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import nexus_ray
from nexus_ray import NexusError, NotFoundError, WorkflowBuilder
from nexus_ray.runtime.run_service import RunService
from nexus_ray.runtime.session_service import SessionService
from nexus_ray.runtime.subscriptions import EventHub
from nexus_ray.store import Store
from nexus_ray.store.backends import SQLiteBackend


def halve(x: int) -> int:
    nexus_ray.progress(0.5, "halfway")  # from the node thread pool
    return x // 2


async def shout(y: int) -> str:
    nexus_ray.emit("note", {"text": "loud"})
    await asyncio.sleep(0.05)
    return f"{y}!"


def pipeline() -> Any:
    b = WorkflowBuilder().add_node(halve, "halve").add_node(shout, "shout")
    return b.add_connection("halve", "result", "shout", "y").build()


def service(path: Path | None) -> RunService:
    factory = (lambda: Store(SQLiteBackend(path))) if path else None
    return RunService("h0", {"p": pipeline()}, store_factory=factory)


async def collect(stream: AsyncIterator[dict[str, Any] | None]) -> list[dict[str, Any]]:
    return [event async for event in stream if event is not None]


EXPECTED = [
    ("run.started", None),
    ("node.started", "halve"),
    ("node.progress", "halve"),
    ("node.completed", "halve"),
    ("node.started", "shout"),
    ("note", "shout"),
    ("node.completed", "shout"),
    ("run.completed", None),
]


@pytest.mark.parametrize("durable", [True, False])
async def test_a_run_streams_every_event_in_order_ending_with_its_outputs(durable: bool, tmp_path: Path) -> None:
    svc = service(tmp_path / "s.db" if durable else None)
    hub = EventHub("run", svc.wait_events)
    run = asyncio.ensure_future(svc.execute("p", {"halve": {"x": 8}}, "r1"))
    await asyncio.sleep(0)
    events = await collect(hub.subscribe("r1"))
    assert [(e["type"], e["data"].get("node")) for e in events] == EXPECTED
    assert [e["seq"] for e in events] == list(range(1, 9)) and {e["run_id"] for e in events} == {"r1"}
    assert events[2]["data"] == {"node": "halve", "fraction": 0.5, "message": "halfway"}
    assert events[-1]["data"]["outputs"]["shout"] == {"result": "4!"}
    assert (await run)["status"] == "completed"
    replay = await collect(hub.subscribe("r1", after=5))  # a finished run replays from a cursor and ends
    assert [e["seq"] for e in replay] == [6, 7, 8]
    if durable:
        stored = await svc.store.call("list_events", "run", "r1")  # type: ignore[union-attr]
        assert [e["type"] for e in stored] == [t for t, _ in EXPECTED]
    svc.close()


async def test_a_long_poll_waits_for_the_next_event_without_polling(tmp_path: Path) -> None:
    svc = service(tmp_path / "s.db")
    run = asyncio.ensure_future(svc.execute("p", {"halve": {"x": 2}}, "r2"))
    events, _ = await svc.wait_events("r2", 0, 5.0)
    started = time.perf_counter()
    more, closed = await svc.wait_events("r2", events[-1]["seq"], 5.0)
    assert more and more[0]["seq"] == events[-1]["seq"] + 1 and time.perf_counter() - started < 1.0
    await run
    last, closed = await svc.wait_events("r2", 8, 0.2)
    assert last == [] and closed
    with pytest.raises(NotFoundError):
        await svc.wait_events("nope", 0, 0.1)
    svc.close()


async def test_progress_outside_a_node_says_where_it_works() -> None:
    with pytest.raises(NexusError, match="only inside a node"):
        nexus_ray.progress(0.1)


async def test_session_subscribers_share_one_poll_and_all_see_each_update(tmp_path: Path) -> None:
    sessions = SessionService("s0", lambda: Store(SQLiteBackend(tmp_path / "s.db")))
    sid = (await sessions.create({"n": 0}))["session_id"]
    calls = 0

    async def fetch(session_id: str, after: int, timeout_s: float) -> tuple[list[dict[str, Any]], bool]:
        nonlocal calls
        calls += 1
        return await sessions.wait_events(session_id, after, timeout_s)

    hub = EventHub("session", fetch)

    async def follow() -> list[int]:
        seen = []
        async for event in hub.subscribe(sid, after=1):
            if event is not None and event["type"] == "session.updated":
                seen.append(event["data"]["state"]["n"])
            if event is not None and event["type"] == "session.deleted":
                return seen
        raise AssertionError("the stream ended without session.deleted")

    followers = [asyncio.ensure_future(follow()) for _ in range(20)]
    await asyncio.sleep(0.05)
    for n in range(1, 11):
        await sessions.patch(sid, {"n": n})
    await sessions.delete(sid)
    results = await asyncio.wait_for(asyncio.gather(*followers), 5)
    assert results == [list(range(1, 11))] * 20
    assert calls < 20 + 40  # one initial read each, then shared polls (not one per subscriber per event)
    with pytest.raises(NotFoundError):
        await collect(hub.subscribe("no-such-session"))
    sessions.close()


def count_rows(rows: int) -> int:
    for i in range(rows):
        nexus_ray.progress((i + 1) / rows, f"row {i + 1}")
        if i == rows // 2:
            nexus_ray.emit("halfway", {"row": i + 1})
    return rows


def report_slowly(times: int) -> int:
    for i in range(times):
        nexus_ray.progress((i + 1) / times)
        time.sleep(0.15)  # slower than PROGRESS_EVERY_S: nothing to coalesce
    return times


@pytest.mark.parametrize("durable", [True, False])
async def test_progress_is_coalesced_keeping_its_last_values_and_its_order(durable: bool, tmp_path: Path) -> None:
    workflows = {"rows": WorkflowBuilder().add_node(count_rows, "count").build()}
    svc = RunService(
        "h0", workflows, store_factory=(lambda: Store(SQLiteBackend(tmp_path / "s.db"))) if durable else None
    )
    await svc.execute("rows", {"count": {"rows": 100_000}}, "r-rows")
    events, _ = await svc.wait_events("r-rows", 0, 1.0)
    kinds = [e["type"] for e in events]
    progress = [e["data"] for e in events if e["type"] == "node.progress"]
    assert 2 <= len(progress) <= 20, len(progress)  # 100,000 reports, each a stored row before
    assert progress[-1] == {"node": "count", "fraction": 1.0, "message": "row 100000"}
    assert kinds.index("halfway") < len(kinds) - 1 - kinds[::-1].index("node.progress") < kinds.index("node.completed")
    before_halfway = [e["data"]["fraction"] for e in events[: kinds.index("halfway")] if e["type"] == "node.progress"]
    assert before_halfway and before_halfway[-1] == 0.50001  # the last reported before the event, sent before it
    svc.close()


def announce(kind: str) -> int:
    import datetime

    if kind == "opaque":
        nexus_ray.emit("found", {"thing": object()})
    elif kind == "surrogate":
        nexus_ray.emit("found", {"text": chr(0xD800)})
    elif kind == "progress":
        nexus_ray.progress(0.5, message=object())  # type: ignore[arg-type]
    else:
        nexus_ray.emit("found", {"when": datetime.datetime(2026, 1, 2), "pair": (1, 2)})
    ANNOUNCED.append(kind)
    return 1


ANNOUNCED: list[str] = []


async def test_event_data_the_store_cannot_write_fails_its_node_by_name_and_is_never_retried(tmp_path: Path) -> None:
    """Before, the write failed after the node: the run was resumed from the store, its
    node ran again, six times, and the caller got a 503 "the store failed"."""
    workflow = WorkflowBuilder().add_node(announce, "announce").add_node(halve, "after")
    workflows = {"a": workflow.add_connection("announce", "result", "after", "x").build()}
    svc = RunService("h0", workflows, store_factory=lambda: Store(SQLiteBackend(tmp_path / "s.db")))
    ANNOUNCED.clear()
    opaque = await svc.execute("a", {"announce": {"kind": "opaque"}}, "r-opaque")
    assert opaque["status"] == "failed" and opaque["error"]["type"] == "InvalidRequestError"
    assert "The data of event 'found' cannot be stored as JSON" in opaque["error"]["message"]
    surrogate = await svc.execute("a", {"announce": {"kind": "surrogate"}}, "r-surrogate")
    assert surrogate["status"] == "failed" and "surrogates not allowed" in surrogate["error"]["message"]
    progress = await svc.execute("a", {"announce": {"kind": "progress"}}, "r-progress")
    assert progress["status"] == "failed" and "progress message must be a string" in progress["error"]["message"]
    assert ANNOUNCED == []  # each node ran once and failed at its call
    fine = await svc.execute("a", {"announce": {"kind": "fine"}}, "r-fine")
    assert fine["status"] == "completed"
    live, _ = await svc.wait_events("r-fine", 0, 1.0)
    stored = await svc._stored_events("r-fine", 0)
    found = [e["data"] for e in live if e["type"] == "found"]
    assert found == [e["data"] for e in stored if e["type"] == "found"]  # followers see what the store holds
    assert found == [{"node": "announce", "when": "2026-01-02T00:00:00", "pair": [1, 2]}]
    svc.close()


async def test_progress_slower_than_the_interval_is_all_sent() -> None:
    svc = RunService("h0", {"slow": WorkflowBuilder().add_node(report_slowly, "r").build()})
    await svc.execute("slow", {"r": {"times": 4}}, "r-slow")
    events, _ = await svc.wait_events("r-slow", 0, 1.0)
    assert [e["data"]["fraction"] for e in events if e["type"] == "node.progress"] == [0.25, 0.5, 0.75, 1.0]
    svc.close()


def overrun(seconds: float) -> int:
    time.sleep(seconds)  # past the node's timeout: its thread goes on
    nexus_ray.progress(1.0, "too late")
    nexus_ray.emit("late", {})
    return 1


async def test_a_timed_out_node_s_thread_adds_nothing_after_the_run_ended(tmp_path: Path) -> None:
    from nexus_ray import NodePolicy

    flow = WorkflowBuilder().add_node(overrun, "slow", policy=NodePolicy(timeout_s=0.1)).build()
    svc = RunService("h0", {"slow": flow}, store_factory=lambda: Store(SQLiteBackend(tmp_path / "s.db")))
    result = await svc.execute("slow", {"slow": {"seconds": 0.3}}, "r-late")
    assert result["status"] == "failed" and result["error"]["type"] == "NodeTimeoutError"
    await asyncio.sleep(0.5)  # the thread reported meanwhile
    stored = await svc.store.call("list_events", "run", "r-late")  # type: ignore[union-attr]
    assert [e["type"] for e in stored][-1] == "run.failed"
    assert "late" not in [e["type"] for e in stored] and "node.progress" not in [e["type"] for e in stored]
    svc.close()
