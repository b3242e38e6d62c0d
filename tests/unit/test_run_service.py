"""RunService (the RunHost's logic) in-process, with and without a store:
checkpoints, idempotent re-execution, adoption and resumption of orphaned runs."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from nexus_ray import InvalidRequestError, NotFoundError, RuntimeUnavailableError
from nexus_ray.runtime.ids import new_run_id
from nexus_ray.runtime.peers import PeerGoneError
from nexus_ray.runtime.run_service import RunService
from nexus_ray.store import Store
from nexus_ray.store.async_store import store_failure
from nexus_ray.store.backends import SQLiteBackend
from nexus_ray.workflow import NodePolicy, NodeStatus, RunStatus, Workflow, WorkflowBuilder
from nexus_ray.workflow.events import node_event

from .helpers import CALLS, double_plus_one, two_steps


async def nap(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


def service(store_path: Path | None = None, lease_s: float = 10.0) -> RunService:
    workflows = {"dpo": double_plus_one(), "nap": WorkflowBuilder().add_node(nap, "nap").build(), "two": two_steps()}
    factory = (lambda: Store(SQLiteBackend(store_path))) if store_path else None
    return RunService("h0", workflows, store_factory=factory, lease_s=lease_s)  # type: ignore[arg-type]


async def test_a_run_still_going_is_awaited_by_id(tmp_path: Path) -> None:
    svc = service(tmp_path / "s.db")
    task = asyncio.ensure_future(svc.execute("nap", {"nap": {"seconds": 0.2}}, "r2"))
    await asyncio.sleep(0.05)
    result = await svc.wait_for("r2")
    assert result["status"] == "completed" and result["outputs"]["nap"]["result"] == 0.2
    assert (await task)["run_id"] == "r2"
    svc.close()


async def test_unknown_run() -> None:
    with pytest.raises(NotFoundError, match="No run with id 'nope'"):
        await service().wait_for("nope")


async def test_durable_run_is_checkpointed_and_reexecution_returns_it(tmp_path: Path) -> None:
    svc = service(tmp_path / "s.db")
    CALLS.clear()
    first = await svc.execute("two", {"one": {"x": 1}}, "run-a")
    assert first["outputs"]["two"] == {"result": 20}
    stored = await svc.get_run("run-a")
    assert stored["status"] == "completed" and stored["nodes"]["one"]["status"] == "completed"
    assert stored["outputs"] == {"one": {"result": 2}, "two": {"result": 20}}
    svc._tasks.clear()  # as after a restart: only the store remembers
    again = await svc.execute("two", {"one": {"x": 1}}, "run-a")
    assert again["outputs"] == first["outputs"] and CALLS == ["one", "two"]
    svc.close()


async def test_orphaned_run_is_adopted_and_resumed_without_rerunning_completed_nodes(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    crashed = Store(SQLiteBackend(path))  # what a host that died mid-run left behind
    crashed.create_run("run-b", "two", {"one": {"x": 4}, "two": {}}, owner="dead-host", lease_s=0.01)
    one_done = node_event("one", NodeStatus.COMPLETED, outputs={"result": 5}, duration_ms=1.0)
    crashed.append_event("run", "run-b", *one_done)
    crashed.append_event("run", "run-b", *node_event("two", NodeStatus.RUNNING))
    crashed.close()
    time.sleep(0.02)
    CALLS.clear()
    svc = service(path)
    assert await svc.maintain_once() == ["run-b"]
    result = await svc.wait_for("run-b")
    assert result["status"] == "completed" and result["outputs"]["two"] == {"result": 50}
    assert CALLS == ["two"]  # the completed node did not run again; the in-flight one did
    record = await svc.get_run("run-b")
    assert record["status"] == RunStatus.COMPLETED and record["nodes"]["one"]["duration_ms"] == 1.0
    svc.close()


def crashed_two_step_run(path: Path, definition: Workflow) -> None:
    """What a host that died mid-run of ``definition`` left behind: 'one' completed."""
    crashed = Store(SQLiteBackend(path))
    inputs = {"one": {"x": 4}, "two": {}}
    crashed.create_run("run-d", "two", inputs, owner="dead-host", lease_s=0.01, definition=definition.fingerprints)
    crashed.append_event("run", "run-d", *node_event("one", NodeStatus.COMPLETED, outputs={"result": 5}))
    crashed.close()
    time.sleep(0.02)


async def test_a_run_resumed_after_its_completed_node_changed_fails_saying_so(tmp_path: Path) -> None:
    # It used to feed the old node's stored outputs to the new nodes, or fail with an
    # error about a missing input or output that did not say the workflow had changed.
    crashed_two_step_run(tmp_path / "s.db", two_steps())
    changed = WorkflowBuilder().add_node(lambda x: x - 1, "one").add_node(two_steps().nodes["two"].function, "two")
    changed.add_connection("one", "result", "two", "y")
    CALLS.clear()
    svc = RunService("h0", {"two": changed.build()}, store_factory=lambda: Store(SQLiteBackend(tmp_path / "s.db")))
    assert await svc.maintain_once() == ["run-d"]
    result = await svc.wait_for("run-d")
    assert result["status"] == "failed" and result["error"]["type"] == "WorkflowChangedError"
    assert result["error"]["node"] == "one" and "changed since this run started" in result["error"]["message"]
    assert CALLS == [] and (await svc.get_run("run-d"))["status"] == "failed"
    svc.close()


async def test_a_run_resumed_after_a_node_it_had_not_reached_changed_runs_the_new_one(tmp_path: Path) -> None:
    crashed_two_step_run(tmp_path / "s.db", two_steps())
    fixed = WorkflowBuilder().add_node(two_steps().nodes["one"].function, "one").add_node(lambda y: y * 100, "two")
    fixed.add_connection("one", "result", "two", "y")
    svc = RunService("h0", {"two": fixed.build()}, store_factory=lambda: Store(SQLiteBackend(tmp_path / "s.db")))
    assert await svc.maintain_once() == ["run-d"]
    result = await svc.wait_for("run-d")
    assert result["status"] == "completed" and result["outputs"]["two"] == {"result": 500}
    svc.close()


async def test_a_run_resumed_after_a_node_it_had_not_reached_got_a_new_input_fails_naming_it(
    tmp_path: Path,
) -> None:
    # The node used to fail with its own error about a missing value (NameError, TypeError).
    crashed_two_step_run(tmp_path / "s.db", two_steps())
    grown = WorkflowBuilder().add_node(two_steps().nodes["one"].function, "one").add_node(lambda y, z: y * z, "two")
    grown.add_connection("one", "result", "two", "y")
    svc = RunService("h0", {"two": grown.build()}, store_factory=lambda: Store(SQLiteBackend(tmp_path / "s.db")))
    assert await svc.maintain_once() == ["run-d"]
    result = await svc.wait_for("run-d")
    assert result["status"] == "failed" and result["error"]["type"] == "WorkflowChangedError"
    assert result["error"]["node"] == "two" and "now needs input(s) 'z'" in result["error"]["message"]
    svc.close()


async def test_a_lost_lease_stops_the_copy_here_and_its_caller_gets_the_adopting_host_s_result(tmp_path: Path) -> None:
    svc = service(tmp_path / "s.db", lease_s=0.05)
    task = asyncio.ensure_future(svc.execute("nap", {"nap": {"seconds": 5}}, "run-c"))
    await asyncio.sleep(0.1)  # lease expired: nobody renewed it
    other = Store(SQLiteBackend(tmp_path / "s.db"))
    assert other.adopt_orphans("other-host", lease_s=60) == ["run-c"]
    other.close()
    await svc.maintain_once()
    await asyncio.sleep(0.05)
    assert not task.done() and svc._tasks["run-c"].cancelled()  # the copy here stopped; the caller waits on
    other = Store(SQLiteBackend(tmp_path / "s.db"))  # the adopting host finishes the run
    other.finish_run("run-c", RunStatus.COMPLETED, {"nap": {"result": 5}}, None)
    other.close()
    result = await asyncio.wait_for(task, 5)
    assert result["status"] == "completed" and result["outputs"] == {"nap": {"result": 5}}
    svc.close()


async def test_a_caller_cancelled_while_waiting_is_not_turned_into_a_store_wait(tmp_path: Path) -> None:
    svc = service(tmp_path / "s.db")
    caller = asyncio.ensure_future(svc.execute("nap", {"nap": {"seconds": 5}}, "run-d"))
    await asyncio.sleep(0.1)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert not svc._tasks["run-d"].done()  # the run itself goes on (shielded)
    # The caller and the run's copy here stopped at once (e.g. the host shutting down):
    # the caller is cancelled, not sent to wait for the run in the store.
    both = asyncio.ensure_future(svc.execute("nap", {"nap": {"seconds": 5}}, "run-e"))
    await asyncio.sleep(0.1)
    copy_here = svc._tasks["run-e"]
    copy_here.add_done_callback(lambda _: both.cancel())  # the caller is cancelled as the copy stops
    copy_here.cancel()
    done, _ = await asyncio.wait({both}, timeout=2)
    assert done and both.cancelled()
    svc.close()


async def test_runs_past_the_retention_are_purged_a_chunk_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nexus_ray.runtime.run_service.PURGE_CHUNK", 2)
    db = tmp_path / "s.db"
    aged = Store(SQLiteBackend(db))  # five runs created three days ago, finished two days ago
    done = [f"{int((time.time() - 3 * 86400) * 1000):012x}{n:020x}" for n in range(5)]
    for run_id in done:
        aged.create_run(run_id, "dpo", {"double": {"x": 1}}, owner="gone", lease_s=1)
        aged.finish_run(run_id, RunStatus.COMPLETED, {}, None)
    aged.backend.execute("UPDATE runs SET finished_at = finished_at - 2 * 86400")
    for n in range(3):  # three broadcasts without a session, two days old
        aged.append_event("global", "", "news", {"n": n})
    aged.backend.execute("UPDATE events SET created_at = created_at - 2 * 86400 WHERE scope = 'global'")
    used, gone = (f"{int((time.time() - 3 * 86400) * 1000):012x}{n:020x}" for n in (7, 8))
    for session_id in (used, gone):  # created three days ago: every event of theirs is that old
        aged.create_session(session_id, {"v": 0}, None)
        aged.save_session(session_id, {"v": 1}, 1)
    aged.delete_session(gone)
    aged.backend.execute("UPDATE events SET created_at = created_at - 3 * 86400 WHERE scope = 'session'")
    aged.save_session(used, {"v": 2}, 2)  # and one event of today
    aged.backend.commit()
    aged.close()
    keeper = RunService("h1", {"dpo": double_plus_one()}, store_factory=lambda: Store(SQLiteBackend(db)))
    keeper.start_maintenance()
    assert keeper._purging is None  # no retention: nothing is ever purged
    keeper.close()
    purger = RunService(
        "h1", {"dpo": double_plus_one()}, store_factory=lambda: Store(SQLiteBackend(db)), retention_s=86400
    )
    recent = (await purger.execute("dpo", {"double": {"x": 9}}, new_run_id()))["run_id"]
    purger.start_maintenance()  # the first purge runs at once, in three chunks of at most 2
    for _ in range(100):
        await asyncio.sleep(0.02)
        if len(await purger.list_runs(limit=10)) == 1:
            break
    assert [r["run_id"] for r in await purger.list_runs(limit=10)] == [recent]
    for _ in range(100):
        news = await purger.store.call("list_events", "global", "")  # type: ignore[union-attr]
        if len(news) == 1:
            break
        await asyncio.sleep(0.02)
    assert [e["data"] for e in news] == [{"n": 2}]  # the newest stays: numbers go on from it
    for _ in range(100):
        logs = [await purger.store.call("list_events", "session", s) for s in (used, gone)]  # type: ignore[union-attr]
        if len(logs[0]) == 1:
            break
        await asyncio.sleep(0.02)
    assert [[e["type"] for e in log] for log in logs] == [["session.updated"], []]
    purger.close()


def opaque_model(x: int) -> object:
    return object()


async def test_a_node_whose_outputs_cannot_be_stored_fails_the_run_in_the_store(tmp_path: Path) -> None:
    # Before, the checkpoint write raised past the engine: the caller got a bare error,
    # the run stayed 'running', and each adoption ran the node again.
    workflows = {"opaque": WorkflowBuilder().add_node(opaque_model, "fit").build()}
    svc = RunService("h0", workflows, store_factory=lambda: Store(SQLiteBackend(tmp_path / "s.db")), lease_s=0.3)
    svc.start_maintenance()
    result = await svc.execute("opaque", {"fit": {"x": 1}}, "run-o")
    assert result["status"] == "failed" and result["error"]["node"] == "fit"
    assert "cannot be written as JSON" in result["error"]["message"]
    await asyncio.sleep(1.0)  # three lease periods: nothing is adopted and run again
    stored = await svc.get_run("run-o")
    assert stored["status"] == "failed" and stored["nodes"]["fit"]["status"] == "failed"
    events = await svc.store.call("list_events", "run", "run-o", None, 0, 100)  # type: ignore[union-attr]
    assert [e["type"] for e in events] == ["run.started", "node.started", "node.failed", "run.failed"]
    svc.close()


class FlakyStore(Store):
    """Fails writing the checkpoint of ``node`` ``failures`` times (a lost connection, a
    locked disk)."""

    node = "one"
    failures = 0

    def append_event(self, scope: str, scope_id: str, event_type: str, data: dict[str, Any]) -> Any:
        flaky = type(self)
        if event_type == "node.completed" and data["node"] == flaky.node and flaky.failures:
            flaky.failures -= 1
            raise sqlite3.OperationalError("disk I/O error")
        return super().append_event(scope, scope_id, event_type, data)


async def test_a_run_whose_checkpoint_write_failed_resumes_from_the_store_and_its_caller_gets_the_result(
    tmp_path: Path,
) -> None:
    FlakyStore.failures = 2  # its group commit, then the write alone
    svc = RunService("h0", {"two": two_steps()}, store_factory=lambda: FlakyStore(SQLiteBackend(tmp_path / "s.db")))
    CALLS.clear()
    result = await svc.execute("two", {"one": {"x": 1}}, "r-flaky")  # before: RuntimeUnavailableError (503)
    assert result["status"] == "completed" and result["outputs"]["two"] == {"result": 20}
    assert CALLS == ["one", "one", "two"]  # its outputs were never stored: it ran again, as after a crash
    events = await svc.store.call("list_events", "run", "r-flaky")  # type: ignore[union-attr]
    resumed = [e["data"] for e in events if e["type"] == "run.resumed"]
    assert resumed == [{"host": "h0", "done": [], "cause": "store"}]
    stored = await svc.store.call("get_run", "r-flaky")  # type: ignore[union-attr]
    assert stored.status == RunStatus.COMPLETED and stored.crashes == {}  # a store failure is no host death
    svc.close()


async def test_a_store_that_stays_down_fails_the_caller_after_the_recovery_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nexus_ray.runtime.run_service.STORE_RECOVERY_S", 0.3)
    FlakyStore.failures = 2
    svc = RunService("h0", {"two": two_steps()}, store_factory=lambda: FlakyStore(SQLiteBackend(tmp_path / "s.db")))
    original = svc._load

    async def store_down(run_id: str) -> Any:
        raise store_failure(sqlite3.OperationalError("unable to open database file"))

    svc._load = store_down  # type: ignore[method-assign]
    started = time.perf_counter()
    with pytest.raises(RuntimeUnavailableError, match="The store failed: disk I/O error"):
        await svc.execute("two", {"one": {"x": 1}}, "r-down")
    assert 0.3 <= time.perf_counter() - started < 3
    svc._load = original  # type: ignore[method-assign]
    assert (await svc.get_run("r-down"))["status"] == "running"  # resumed once its lease expires
    svc.close()


class LosesFinalCheckpoint(FlakyStore):
    """Fails writing the final node's completion (which nobody waits for)."""

    node = "two"


async def test_a_run_is_not_recorded_finished_while_a_write_of_it_nobody_waited_for_was_lost(tmp_path: Path) -> None:
    """A node's completion is not waited for when no node depends on it (it commits with
    the run's end). Before, when its write failed and the run's end, in a later commit,
    did not, the run was stored completed with that node still running."""
    LosesFinalCheckpoint.failures = 2  # its group commit, then the write alone
    factory = lambda: LosesFinalCheckpoint(SQLiteBackend(tmp_path / "s.db"))  # noqa: E731
    svc = RunService("h0", {"two": two_steps()}, store_factory=factory)
    CALLS.clear()
    result = await svc.execute("two", {"one": {"x": 1}}, "r-lost")
    assert result["status"] == "completed" and result["outputs"]["two"] == {"result": 20}
    stored = await svc.get_run("r-lost")
    assert stored["status"] == "completed" and stored["nodes"]["two"]["status"] == "completed"
    assert CALLS == ["one", "two", "two"]  # resumed from the store: its lost completion ran again
    events = await svc.store.call("list_events", "run", "r-lost")  # type: ignore[union-attr]
    assert [e["data"]["cause"] for e in events if e["type"] == "run.resumed"] == ["store"]
    svc.close()


class SlowStore(Store):
    """Takes 50 ms to write a node start or a resumption (a busy disk): a write that is
    not waited for lands after the node has run."""

    def append_event(self, scope: str, scope_id: str, event_type: str, data: dict[str, Any]) -> Any:
        if event_type in ("node.started", "run.resumed"):
            time.sleep(0.05)
        return super().append_event(scope, scope_id, event_type, data)


def starts_stored(db: str, run_id: str) -> int:
    """How many node starts and resumptions of this run the store holds (read as another
    process would)."""
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM events WHERE scope = 'run' AND scope_id = ?"
            " AND type IN ('node.started', 'run.resumed')",
            (run_id,),
        ).fetchone()
    return int(count)


async def test_a_resumed_run_stores_its_resumption_and_each_node_start_before_the_node_runs(tmp_path: Path) -> None:
    """A node that kills its host at once must still be counted towards crash_retries: on
    a first run its start may not be stored yet when the process dies, after a resume it is."""
    db = tmp_path / "s.db"
    crashed = Store(SQLiteBackend(db))
    crashed.create_run("run-s", "peek", {"peek": {"db": str(db), "run_id": "run-s"}}, owner="dead-host", lease_s=0.01)
    crashed.append_event("run", "run-s", *node_event("peek", NodeStatus.RUNNING))
    crashed.close()
    time.sleep(0.02)
    flow = WorkflowBuilder().add_node(starts_stored, "peek").build()
    svc = RunService("h0", {"peek": flow}, store_factory=lambda: SlowStore(SQLiteBackend(db)))
    assert await svc.maintain_once() == ["run-s"]
    result = await svc.wait_for("run-s")
    # the first start, the resumption and the new start were in the store when it ran
    assert result["status"] == "completed" and result["outputs"]["peek"] == {"result": 3}
    svc.close()


async def test_a_cancel_sent_again_after_a_restart_gets_the_cancelled_run(tmp_path: Path) -> None:
    from nexus_ray import ConflictError

    svc = service(tmp_path / "s.db")
    await svc.start("nap", {"nap": {"seconds": 5}}, "r-nap")
    assert (await svc.cancel("r-nap"))["status"] == "cancelled"
    with pytest.raises(ConflictError, match="already finished"):
        await svc.cancel("r-nap")  # no restart: it was cancelled by someone
    svc.close()
    restarted = service(tmp_path / "s.db")
    restarted.expect_retries()
    again = await restarted.cancel("r-nap")  # the same call again: it did cancel it (before: 409)
    assert again["status"] == "cancelled" and again["run_id"] == "r-nap"
    restarted.close()


async def test_a_run_cancelled_right_after_it_started_is_recorded_cancelled(tmp_path: Path) -> None:
    """Its task had not taken its first step: cancelled then, it never ran the code that
    records the cancellation; the canceller got a CancelledError and the run stayed
    'running' in the store until its lease expired."""
    svc = service(tmp_path / "s.db")
    await svc.start("nap", {"nap": {"seconds": 5}}, "r-quick")
    assert (await svc.cancel("r-quick"))["status"] == "cancelled"
    assert (await svc.get_run("r-quick"))["status"] == "cancelled"
    svc.close()


async def test_a_run_adopted_elsewhere_while_its_store_failed_gives_its_caller_that_host_s_result(
    tmp_path: Path,
) -> None:
    FlakyStore.failures = 2
    db = tmp_path / "s.db"
    svc = RunService("h0", {"two": two_steps()}, store_factory=lambda: FlakyStore(SQLiteBackend(db)))
    caller = asyncio.ensure_future(svc.execute("two", {"one": {"x": 1}}, "r-moved"))
    while FlakyStore.failures:  # the checkpoint write has failed twice: the host waits for the store
        await asyncio.sleep(0.001)
    other = Store(SQLiteBackend(db))  # another host adopted it meanwhile
    other.backend.execute("UPDATE runs SET owner = 'h1/1/aa' WHERE run_id = 'r-moved'")
    other.backend.commit()
    await asyncio.sleep(0.2)
    assert not caller.done()  # not resumed here: it waits for the other host
    assert other.finish_run("r-moved", RunStatus.COMPLETED, {"two": {"result": 20}}, None)
    result = await asyncio.wait_for(caller, 5)
    assert result["status"] == "completed" and result["outputs"] == {"two": {"result": 20}}
    other.close()
    svc.close()


def echo(value: Any) -> Any:
    return value


async def test_inputs_the_store_cannot_keep_are_refused_with_nothing_stored(tmp_path: Path) -> None:
    workflow = WorkflowBuilder().add_node(echo, "echo").build()
    svc = RunService("h0", {"echo": workflow}, store_factory=lambda: Store(SQLiteBackend(tmp_path / "s.db")))
    with pytest.raises(InvalidRequestError, match="cannot be stored as JSON"):
        await svc.execute("echo", {"echo": {"value": {"thing": object()}}}, "run-bad")
    with pytest.raises(NotFoundError):
        await svc.get_run("run-bad")
    assert not svc.feed.is_tracked("run-bad")
    svc.close()


def exits_from_a_thread(code: int) -> int:
    raise SystemExit(code)


async def exits_on_the_loop(code: int) -> int:
    raise SystemExit(code)


@pytest.mark.parametrize("durable", [True, False])
async def test_a_node_that_calls_sys_exit_fails_its_run_and_the_host_goes_on(durable: bool, tmp_path: Path) -> None:
    """sys.exit(), exit(), argparse or click given bad arguments. Before, a plain
    function's run never ended (the thread's SystemExit never reached it), and from
    an async node or a PythonCodeNode, SystemExit stopped the host's event loop."""
    workflows = {
        "thread": WorkflowBuilder().add_node(exits_from_a_thread, "n").build(),
        "loop": WorkflowBuilder().add_node(exits_on_the_loop, "n").build(),
        "code": WorkflowBuilder().add_node("PythonCodeNode", "n", {"code": "raise SystemExit(code)"}).build(),
        "timed": WorkflowBuilder().add_node(exits_on_the_loop, "n", policy=NodePolicy(timeout_s=5)).build(),
        "dpo": double_plus_one(),
    }
    factory = (lambda: Store(SQLiteBackend(tmp_path / "s.db"))) if durable else None
    svc = RunService("h0", workflows, store_factory=factory)  # type: ignore[arg-type]
    for code, name in enumerate(["thread", "loop", "code", "timed"], start=2):
        result = await asyncio.wait_for(svc.execute(name, {"n": {"code": code}}, f"r-{name}"), 5)
        assert result["status"] == "failed", name
        assert result["error"] == {
            "node": "n",
            "type": "ExitCalledError",
            "message": f"node 'n' called sys.exit({code}); it fails, and its host goes on",
        }
    assert (await svc.execute("dpo", {"double": {"x": 1}}, "r-after"))["status"] == "completed"
    svc.close()


async def test_a_run_cancelled_through_another_host_stops_on_the_host_running_it_at_once(tmp_path: Path) -> None:
    """A run runs off its id's host after an adoption or a resize of the pool; a cancel
    reaches the id's host, which marks it cancelled in the store. Before, the host running
    it stopped it only at its next lease renewal (up to a third of the lease later): its
    node went on meanwhile, and a quick one let the next node start."""
    running, other, peers = two_hosts(tmp_path)
    caller = asyncio.ensure_future(running.execute("two_naps", {"first": {"seconds": 5}}, "r-off"))
    await asyncio.sleep(0.2)
    assert not await running.stop_cancelled("r-off")  # still its own: nobody cancelled it
    started = time.monotonic()
    assert (await other.cancel("r-off"))["status"] == "cancelled"
    assert peers.asked == [("h0", "stop_cancelled", ("r-off",))]
    result = await asyncio.wait_for(caller, 1)  # its caller on the running host gets the cancelled run
    assert result["status"] == "cancelled" and time.monotonic() - started < 1
    assert not await running.stop_cancelled("r-off")  # nothing left to stop
    events = [e["type"] for e in await running._stored_events("r-off", 0)]
    assert "node.completed" not in events and events[-1] == "run.cancelled"
    running.close()
    other.close()


def two_naps() -> Workflow:
    builder = WorkflowBuilder().add_node(nap, "first").add_node(nap, "second")
    return builder.add_connection("first", "result", "second", "seconds").build()


def two_hosts(tmp_path: Path) -> tuple[RunService, RunService, InProcessPeers]:
    """Hosts h0 and h1 on one store, with 30 s leases (renewal never acts in a test); h1
    reaches h0 through the peers returned."""
    workflows = {"two_naps": two_naps()}
    factory = lambda: Store(SQLiteBackend(tmp_path / "s.db"))  # noqa: E731
    running = RunService("h0", workflows, store_factory=factory, lease_s=30)
    peers = InProcessPeers({"h0": running})
    return running, RunService("h1", workflows, store_factory=factory, lease_s=30, peers=peers), peers


class InProcessPeers:
    """Hosts reached by id, as RayPeers reaches RunHosts; the calls asked."""

    def __init__(self, services: dict[str, RunService]) -> None:
        self.services, self.asked = services, []  # type: list[tuple[str, str, tuple[Any, ...]]]

    async def call(self, host_id: str, method: str, args: tuple[Any, ...], timeout_s: float) -> Any:
        self.asked.append((host_id, method, args))
        if host_id not in self.services:
            raise PeerGoneError(host_id)
        return await asyncio.wait_for(getattr(self.services[host_id], method)(*args), timeout_s)


async def test_events_of_a_run_running_on_another_host_are_followed_there_live(tmp_path: Path) -> None:
    """Before, the id's host read them from the store every 0.2 s: a follower waiting for
    the next event got an empty answer after 0.2 s, then the event up to 0.2 s late."""
    running, other, peers = two_hosts(tmp_path)
    await running.start("two_naps", {"first": {"seconds": 1.0}}, "r-far")
    await asyncio.sleep(0.1)
    seen, _ = await other.wait_events("r-far", 0, 5)  # what the store has now, at once
    assert [e["type"] for e in seen] == ["run.started", "node.started"]
    started = time.monotonic()
    more, ended = await other.wait_events("r-far", seen[-1]["seq"], 5)  # waits there for the next one
    assert [e["type"] for e in more][:1] == ["node.completed"] and not ended  # (the next start may come with it)
    assert 0.5 < time.monotonic() - started < 2.0
    assert peers.asked[-1] == ("h0", "wait_events_here", ("r-far", seen[-1]["seq"], 5))
    await running.wait_for("r-far")
    peers.services.clear()  # the host is gone: the store answers
    rest, ended = await other.wait_events("r-far", more[-1]["seq"], 5)
    assert [e["type"] for e in rest][-1] == "run.completed" and ended
    running.close()
    other.close()
