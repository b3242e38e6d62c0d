"""The run and session services over each backend (group commit, adoption, session
turns): what a cluster runs on PostgreSQL, the rest of the suite checks on SQLite."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import pytest

from nexus_ray.runtime.ids import new_run_id
from nexus_ray.runtime.run_service import RunService
from nexus_ray.runtime.session_service import SessionService
from nexus_ray.store import Store
from nexus_ray.workflow import NodeStatus
from nexus_ray.workflow.events import node_event

from ..helpers import CALLS, TWO_NODE_EVENTS, InProcessSessions, double_plus_one, two_steps, visit_workflow


@pytest.fixture
def services(make_backend: Callable[[], object]) -> Iterator[tuple[RunService, SessionService]]:
    def factory() -> Store:
        return Store(make_backend())  # type: ignore[arg-type]

    sessions = SessionService("s0", factory)
    workflows = {"dpo": double_plus_one(), "visit": visit_workflow(), "two": two_steps()}
    runs = RunService("h0", workflows, store_factory=factory, sessions=InProcessSessions(sessions))
    yield runs, sessions
    runs.close()
    sessions.close()


async def test_concurrent_durable_runs_share_commits_and_keep_every_event(
    services: tuple[RunService, SessionService],
) -> None:
    runs, _ = services
    ids = [new_run_id() for _ in range(100)]
    results = await asyncio.gather(*(runs.execute("dpo", {"double": {"x": n}}, r) for n, r in enumerate(ids)))
    assert [r["outputs"]["add_one"]["result"]["value"] for r in results] == [2 * n + 1 for n in range(100)]
    stored = await runs.get_run(ids[42])
    assert stored["status"] == "completed" and stored["outputs"]["add_one"]["result"]["value"] == 85
    assert len(await runs.list_runs(limit=500)) == 100
    events = await runs.store.call("list_events", "run", ids[7], None, 0, 100)  # type: ignore[union-attr]
    assert [e["type"] for e in events] == TWO_NODE_EVENTS
    assert [e["seq"] for e in events] == list(range(1, 7))


async def test_an_idempotency_key_claimed_at_once_maps_to_one_run(services: tuple[RunService, SessionService]) -> None:
    runs, _ = services
    inputs = {"double": {"x": 3}}
    tries = [runs.execute_idempotent("k", "digest", "dpo", inputs, new_run_id(), True) for _ in range(10)]
    assert len({r["run_id"] for r in await asyncio.gather(*tries)}) == 1


async def test_session_turns_serialize_and_concurrent_runs_lose_no_update(
    services: tuple[RunService, SessionService],
) -> None:
    """Ten runs read visits=0 at once; the first to finish writes visits=1, and the others,
    whose patches were computed from a state that is no longer current, fail and say so
    (last-writer-wins would lose nine increments without a word)."""
    runs, sessions = services
    sid = (await sessions.create({"visits": 0, "name": "ada"}))["session_id"]
    ended = await asyncio.gather(*(runs.execute_in_session("visit", {}, new_run_id(), sid, True) for _ in range(10)))
    assert sorted(r["status"] for r in ended) == ["completed"] + ["failed"] * 9
    assert {r["error"]["type"] for r in ended if r.get("error")} == {"SessionConflictError"}
    await asyncio.gather(*(sessions.turn(sid, lambda s: {**s, "visits": s["visits"] + 1}) for _ in range(40)))
    final = await sessions.get(sid)
    assert final["state"]["visits"] == 41 and final["version"] == 42


async def test_an_orphaned_run_is_resumed_from_its_last_committed_node(
    services: tuple[RunService, SessionService], make_backend: Callable[[], object]
) -> None:
    runs, _ = services
    crashed = Store(make_backend())  # type: ignore[arg-type]  # what a host that died mid-run left behind
    crashed.create_run("run-b", "two", {"one": {"x": 4}, "two": {}}, owner="dead-host", lease_s=0.01)
    crashed.append_event("run", "run-b", *node_event("one", NodeStatus.COMPLETED, outputs={"result": 5}))
    crashed.append_event("run", "run-b", *node_event("two", NodeStatus.RUNNING))
    crashed.backend.commit()
    crashed.close()
    time.sleep(0.02)
    CALLS.clear()
    assert await runs.maintain_once() == ["run-b"]
    result = await runs.wait_for("run-b")
    assert result["status"] == "completed" and result["outputs"]["two"] == {"result": 50}
    assert CALLS == ["two"]  # the completed node did not run again; the in-flight one did


@pytest.mark.parametrize("resumed_before", [2, 3])
async def test_a_node_running_at_more_host_deaths_than_crash_retries_fails_its_run_instead_of_running_again(
    services: tuple[RunService, SessionService], make_backend: Callable[[], object], resumed_before: int
) -> None:
    """A node that kills its host (os._exit, a native crash, out of memory) would be
    resumed and kill host after host for ever. Deaths are counted per node: ``one`` was
    running at two of them and then completed, which does not count against ``two``."""
    runs, _ = services
    assert runs.crash_retries == 3
    crashed = Store(make_backend())  # type: ignore[arg-type]  # what hosts that died mid-run left behind
    crashed.create_run("run-p", "two", {"one": {"x": 4}, "two": {}}, owner="dead-host", lease_s=0.01)
    resumed = ("run.resumed", {"host": "h-old", "done": []})
    for _ in range(2):
        crashed.append_event("run", "run-p", *node_event("one", NodeStatus.RUNNING))
        crashed.append_event("run", "run-p", *resumed)
    crashed.append_event("run", "run-p", *node_event("one", NodeStatus.COMPLETED, outputs={"result": 5}))
    crashed.append_event("run", "run-p", *node_event("two", NodeStatus.RUNNING))
    for _ in range(resumed_before):  # its host died, and the next one died too
        crashed.append_event("run", "run-p", *resumed)
        crashed.append_event("run", "run-p", *node_event("two", NodeStatus.RUNNING))
    assert crashed.get_run("run-p").crashes == {"one": 2, "two": resumed_before}  # type: ignore[union-attr]
    crashed.backend.commit()
    crashed.close()
    time.sleep(0.02)
    CALLS.clear()
    assert await runs.maintain_once() == ["run-p"]  # the host running it died once more
    result = await runs.wait_for("run-p")
    if resumed_before < 3:  # ran again: 3 deaths in all, as many as crash_retries allows
        assert result["status"] == "completed" and CALLS == ["two"]
        return
    assert CALLS == []  # not run a 4th time
    assert result["status"] == "failed" and result["error"]["type"] == "NodeCrashedError"
    assert (
        result["error"]["node"] == "two"
        and "died or stopped renewing its lease 4 times (NEXUS_CRASH_RETRIES=3)" in result["error"]["message"]
    )
    stored = await runs.get_run("run-p")
    assert stored["status"] == "failed" and stored["nodes"]["two"]["status"] == "failed"
    assert stored["nodes"]["one"]["status"] == "completed"
    events = await runs.store.call("list_events", "run", "run-p", None, 0, 100)  # type: ignore[union-attr]
    assert [e["type"] for e in events][-3:] == ["run.resumed", "node.failed", "run.failed"]


async def test_a_resumed_session_run_still_refuses_to_overwrite_a_change(
    services: tuple[RunService, SessionService], make_backend: Callable[[], object]
) -> None:
    """The version a run read is kept with the run (in its run.started event), so the host
    that resumes it after a crash checks the write-back as the first host would have."""
    runs, sessions = services
    sid = (await sessions.create({"visits": 0, "name": "ada"}))["session_id"]
    crashed = Store(make_backend())  # type: ignore[arg-type]  # it read version 1, then died
    inputs = {"count": {"visits": 0, "name": "ada"}, "remember": {}}
    crashed.create_run("run-s", "visit", inputs, owner="dead-host", lease_s=0.01, session_id=sid, session_version=1)
    crashed.backend.commit()
    crashed.close()
    await sessions.patch(sid, {"name": "bob"})  # version 2, while the run's host was down
    time.sleep(0.02)
    assert await runs.maintain_once() == ["run-s"]
    result = await runs.wait_for("run-s")
    assert result["status"] == "failed" and result["error"]["type"] == "SessionConflictError"
    assert (await sessions.get(sid))["state"] == {"visits": 0, "name": "bob"}
