"""Runs that belong to a session: state offered as inputs, write-back in one transaction."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nexus_ray import NotFoundError, StoreUnavailableError
from nexus_ray.runtime.run_service import RunService
from nexus_ray.runtime.session_service import SessionService
from nexus_ray.store import Store
from nexus_ray.store.backends import SQLiteBackend
from nexus_ray.workflow import WorkflowBuilder

from .helpers import InProcessSessions, visit_workflow


async def slow_fail(fail: bool = False, pause: float = 0.0) -> int:
    await asyncio.sleep(pause)
    if fail:
        raise RuntimeError("no")
    return 1


def failing_workflow() -> Any:
    b = WorkflowBuilder()
    b.add_node("PythonCodeNode", "patch", {"code": "result = {'touched': True}"})
    b.add_node("SessionUpdateNode", "remember").add_node(slow_fail, "maybe")
    return b.add_connection("patch", "result", "remember", "patch").build()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[RunService, SessionService]]:
    db = tmp_path / "s.db"
    sessions = SessionService("s0", lambda: Store(SQLiteBackend(db)))
    workflows = {
        "visit": visit_workflow(),
        "failing": failing_workflow(),
        "timed": WorkflowBuilder(timeout_s=0.05).add_node(slow_fail, "maybe").build(),
    }
    runs = RunService(
        "h0", workflows, store_factory=lambda: Store(SQLiteBackend(db)), sessions=InProcessSessions(sessions)
    )
    yield runs, sessions
    runs.close()
    sessions.close()


async def test_state_offered_as_inputs_and_written_back(services: tuple[RunService, SessionService]) -> None:
    runs, sessions = services
    sid = (await sessions.create({"name": "ada", "visits": 0, "other": "kept"}))["session_id"]
    result = await runs.execute_in_session("visit", {}, "r1", sid, wait=True)
    assert result["status"] == "completed"
    assert result["outputs"]["count"]["result"] == {"visits": 1, "greeting": "hi ada"}
    session = await sessions.get(sid)
    assert session["state"] == {"name": "ada", "visits": 1, "other": "kept", "greeting": "hi ada"}
    assert session["version"] == 2
    assert [r["run_id"] for r in await runs.list_runs(session_id=sid)] == ["r1"]


async def test_explicit_inputs_win_over_session_state(services: tuple[RunService, SessionService]) -> None:
    runs, sessions = services
    sid = (await sessions.create({"name": "ada", "visits": 5}))["session_id"]
    result = await runs.execute_in_session("visit", {"name": "bob"}, "r2", sid, wait=True)
    assert result["outputs"]["count"]["result"] == {"visits": 6, "greeting": "hi bob"}


async def test_failed_run_writes_nothing_back(services: tuple[RunService, SessionService]) -> None:
    runs, sessions = services
    sid = (await sessions.create({"x": 1}))["session_id"]
    result = await runs.execute_in_session("failing", {"fail": True}, "r3", sid, wait=True)
    assert result["status"] == "failed"
    session = await sessions.get(sid)
    assert session["state"] == {"x": 1} and session["version"] == 1


async def test_missing_session_is_404(services: tuple[RunService, SessionService]) -> None:
    runs, _ = services
    with pytest.raises(NotFoundError, match="No session"):
        await runs.execute_in_session("visit", {}, "r4", "no-such-session", wait=True)


async def test_session_deleted_during_the_run_fails_the_run(services: tuple[RunService, SessionService]) -> None:
    runs, sessions = services
    sid = (await sessions.create({}))["session_id"]
    task = asyncio.ensure_future(runs.execute_in_session("failing", {"pause": 0.2}, "r5", sid, wait=True))
    await asyncio.sleep(0.05)
    await sessions.delete(sid)
    result = await task
    assert result["status"] == "failed" and result["error"]["type"] == "SessionNotFoundError"
    assert (await runs.get_run("r5"))["status"] == "failed"


async def test_a_run_whose_session_changed_meanwhile_fails_instead_of_overwriting(
    services: tuple[RunService, SessionService],
) -> None:
    runs, sessions = services
    sid = (await sessions.create({"x": 1}))["session_id"]
    task = asyncio.ensure_future(runs.execute_in_session("failing", {"pause": 0.2}, "r6", sid, wait=True))
    await asyncio.sleep(0.05)
    await sessions.patch(sid, {"touched": "by hand"})  # after the run read the state
    result = await task
    assert result["status"] == "failed" and result["error"]["type"] == "SessionConflictError"
    assert "version 1 when it read the state, 2 now" in result["error"]["message"]
    assert (await sessions.get(sid))["state"] == {"x": 1, "touched": "by hand"}  # the PATCH stands
    assert (await runs.get_run("r6"))["status"] == "failed"
    read_only = await runs.execute_in_session("visit", {"name": "a", "visits": 0}, "r7", sid, wait=True)
    assert read_only["status"] == "completed"  # it read version 2 and wrote on it


async def test_every_end_of_a_session_s_run_is_in_the_session_s_log(
    services: tuple[RunService, SessionService], tmp_path: Path
) -> None:
    # Cancelled and timed-out runs used to end without a session.run_completed event.
    runs, sessions = services
    sid = (await sessions.create({"name": "ada", "visits": 0}))["session_id"]
    await runs.execute_in_session("visit", {}, "done", sid, wait=True)
    slow = asyncio.ensure_future(runs.execute_in_session("failing", {"pause": 5.0}, "here", sid, wait=True))
    await asyncio.sleep(0.1)
    assert (await runs.cancel("here"))["status"] == "cancelled"
    await slow
    assert (await runs.execute_in_session("timed", {"pause": 5.0}, "late", sid, wait=True))["status"] == "failed"
    elsewhere = Store(SQLiteBackend(tmp_path / "s.db"))  # a run another host executes
    elsewhere.create_run("away", "failing", {}, owner="other-host", lease_s=60, session_id=sid)
    elsewhere.close()
    assert (await runs.cancel("away"))["status"] == "cancelled"
    events = await sessions.store.call("list_events", "session", sid)
    ends = [(e["data"]["run_id"], e["data"]["status"]) for e in events if e["type"] == "session.run_completed"]
    assert ends == [("done", "completed"), ("here", "cancelled"), ("late", "failed"), ("away", "cancelled")]
    assert (await sessions.get(sid))["state"] == {"name": "ada", "visits": 1, "greeting": "hi ada"}


class SessionStoreFails(InProcessSessions):
    """The session's host fails a run's end once with a store failure, as it reaches the
    RunHost over Ray: pickled, so without its cause. ``after_commit``: the store had
    committed the turn (the reply was lost)."""

    def __init__(self, service: Any, after_commit: bool) -> None:
        super().__init__(service)
        self.after_commit, self.failed = after_commit, False

    async def call(self, method: str, session_id: str, *args: Any) -> Any:
        if method == "complete_run" and not self.failed:
            self.failed = True
            if self.after_commit:
                await super().call(method, session_id, *args)
            raise pickle.loads(pickle.dumps(StoreUnavailableError("The store failed: server closed the connection")))
        return await super().call(method, session_id, *args)


@pytest.mark.parametrize("after_commit", [False, True], ids=["not-committed", "reply-lost"])
async def test_a_session_run_whose_end_hit_a_store_failure_ends_once(tmp_path: Path, after_commit: bool) -> None:
    """Before, a store failure from the session's host arrived without its cause and was not
    taken for one: the caller got a 503 and the run stayed running until its lease expired."""
    db = tmp_path / "s.db"
    sessions = SessionService("s0", lambda: Store(SQLiteBackend(db)))
    runs = RunService(
        "h0",
        {"visit": visit_workflow()},
        store_factory=lambda: Store(SQLiteBackend(db)),
        sessions=SessionStoreFails(sessions, after_commit),
    )
    try:
        sid = (await sessions.create({"name": "ada", "visits": 0}))["session_id"]
        result = await runs.execute_in_session("visit", {}, "r-store", sid, wait=True)
        assert result["status"] == "completed"
        assert (await sessions.get(sid))["state"]["visits"] == 1  # its write-back applied once
        assert (await runs.get_run("r-store"))["status"] == "completed"
    finally:
        runs.close()
        sessions.close()
