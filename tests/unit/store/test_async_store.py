"""The group-commit thread: calls from many coroutines share commits, one failing call
does not fail the others, and queued writes are durable before later awaited calls return."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from nexus_ray import NexusError, RuntimeUnavailableError, StoreUnavailableError
from nexus_ray.store import AsyncStore, Store
from nexus_ray.store.backends import SQLiteBackend
from nexus_ray.workflow import NodeStatus, RunStatus
from nexus_ray.workflow.events import node_event

from ..helpers import lose_the_next_commit_reply


@pytest.fixture
def store(tmp_path: Path) -> AsyncStore:
    return AsyncStore(lambda: Store(SQLiteBackend(tmp_path / "s.db")))


async def test_concurrent_calls_all_commit(store: AsyncStore) -> None:
    created = await asyncio.gather(*(store.call("create_run", f"r{i:03d}", "w", {}) for i in range(200)))
    assert all(created)
    assert len(await store.call("list_runs", limit=500)) == 200
    store.close()


async def test_a_failing_call_does_not_take_the_group_down(store: AsyncStore) -> None:
    good = [store.call("create_run", f"ok{i}", "w", {}) for i in range(5)]
    bad = store.call("create_run", "bad", "w", {"n": {"x": object()}})
    results = await asyncio.gather(*good, bad, return_exceptions=True)
    assert results[:5] == [True] * 5
    assert isinstance(results[5], NexusError)
    assert await store.call("get_run", "bad") is None
    store.close()


async def test_submitted_writes_are_durable_before_a_later_call_returns(store: AsyncStore, tmp_path: Path) -> None:
    await store.call("create_run", "r", "w", {})
    for i in range(50):
        store.submit("append_event", "run", "r", *node_event(f"n{i}", NodeStatus.COMPLETED, outputs={"i": i}))
    await store.call("get_run", "r")  # queued after them: they are committed by now
    store.close()
    reopened = Store(SQLiteBackend(tmp_path / "s.db"))
    run = reopened.get_run("r")
    assert run is not None and len(run.nodes) == 50 and run.nodes["n49"].outputs == {"i": 49}
    reopened.close()


def test_store_that_cannot_open_raises_at_construction(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(RuntimeUnavailableError, match="File exists"):  # the parent "directory" is a file
        AsyncStore(lambda: Store(SQLiteBackend(tmp_path / "file" / "nested.db")))


def test_a_transaction_that_reads_first_then_writes_is_not_refused_by_another_writer(tmp_path: Path) -> None:
    import sqlite3
    import threading

    db = tmp_path / "n.db"
    mine, other = Store(SQLiteBackend(db)), Store(SQLiteBackend(db))

    def read_then_write(write: bool) -> None:
        with mine.transaction(write=write):
            mine.backend.execute("SELECT COUNT(*) FROM runs")
            writer = threading.Thread(target=other.create_run, args=(f"other-{write}", "w", {}))
            writer.start()
            writer.join(0.5)  # deferred: it commits meanwhile; immediate: it waits for us
            mine.backend.execute("INSERT INTO nexus_meta (key, value) VALUES (?, 'x')", (f"k-{write}",))
        writer.join()

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        read_then_write(False)  # what SQLite does to a deferred transaction (the old way)
    read_then_write(True)
    assert other.get_run("other-True") is not None and mine.get_run("other-True") is not None
    mine.close()
    other.close()


async def test_a_full_disk_is_a_503_class_error_naming_it_and_writes_resume_after(store: AsyncStore) -> None:
    await store.call("create_run", "before", "w", {})
    conn = store.store.backend.conn  # type: ignore[attr-defined]  # the store thread is idle now
    conn.execute(f"PRAGMA max_page_count={conn.execute('PRAGMA page_count').fetchone()[0]}")  # the disk is full
    refused = await asyncio.gather(
        *(store.call("create_run", f"s{i}", "w", {"n": {"blob": "x" * 80_000}}) for i in range(3)),
        return_exceptions=True,
    )
    for error in refused:
        assert isinstance(error, RuntimeUnavailableError), error
        assert error.message == "The store failed: database or disk is full"
        assert error.details == {"store_error": "OperationalError"}
        assert isinstance(error.__cause__, sqlite3.OperationalError)
    conn.execute("PRAGMA max_page_count=1073741823")
    assert await store.call("create_run", "s0", "w", {}) is True  # nothing of the refused one was kept
    store.close()


async def test_store_failures_are_logged_at_most_once_every_few_seconds(
    store: AsyncStore, caplog: pytest.LogCaptureFixture
) -> None:
    await store.call("create_run", "r", "w", {})
    conn = store.store.backend.conn  # type: ignore[attr-defined]
    conn.execute(f"PRAGMA max_page_count={conn.execute('PRAGMA page_count').fetchone()[0]}")
    with caplog.at_level("ERROR", logger="nexus_ray.store"):
        for i in range(20):  # twenty groups, each failing
            await asyncio.gather(
                store.call("create_run", f"s{i}", "w", {"n": {"b": "x" * 80_000}}), return_exceptions=True
            )
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("1 store call(s) failed since the last report, e.g. create_run:")
    assert "database or disk is full" in lines[0]
    conn.execute("PRAGMA max_page_count=1073741823")
    store.close()


async def test_a_write_whose_commit_fails_fails_its_caller_even_when_the_call_itself_ran(
    store: AsyncStore, tmp_path: Path
) -> None:
    """An event is held in memory and written at its transaction's commit: before, a group
    that failed was tried again call by call, each call was counted a success as soon as it
    ran, and the commit that then failed was ignored. A node's checkpoint lost that way
    was reported committed, and the nodes that depend on it started (found with a
    PostgreSQL server stopped under load)."""
    await store.call("create_run", "r", "w", {})
    await store.call("append_event", "run", "r", "node.started", {"node": "a"})  # the log's seq is known
    conn = store.store.backend.conn  # type: ignore[attr-defined]
    conn.execute(f"PRAGMA max_page_count={conn.execute('PRAGMA page_count').fetchone()[0]}")
    checkpoint = node_event("a", NodeStatus.COMPLETED, outputs={"blob": "x" * 80_000})
    with pytest.raises(StoreUnavailableError, match="database or disk is full"):
        await store.call("append_event", "run", "r", *checkpoint)
    conn.execute("PRAGMA max_page_count=1073741823")
    assert [e["type"] for e in await store.call("list_events", "run", "r")] == ["run.started", "node.started"]
    store.close()


async def test_a_group_whose_commit_outcome_is_unknown_is_not_written_again(store: AsyncStore) -> None:
    """The connection was lost while the database committed (CommitUnknownError): the group
    may be stored, so its callers get a 503 and nothing is written again. Before, each call
    was made again on its own, and an event the lost commit had stored was stored twice."""
    await store.call("create_run", "r", "w", {})
    backend = store.store.backend  # type: ignore[attr-defined]
    lose_the_next_commit_reply(backend)
    with pytest.raises(StoreUnavailableError, match="lost while committing") as raised:
        await store.call("append_event", "run", "r", "node.started", {"node": "a"})
    assert raised.value.details == {"store_error": "CommitUnknownError"}
    assert [e["type"] for e in await store.call("list_events", "run", "r")] == ["run.started", "node.started"]
    store.close()


class LosesOneEvent(Store):
    """Fails every write of a ``lost`` event (a write that hit a failing disk)."""

    def append_event(self, scope: str, scope_id: str, event_type: str, data: dict[str, Any]) -> Any:
        if event_type == "lost":
            raise sqlite3.OperationalError("disk I/O error")
        return super().append_event(scope, scope_id, event_type, data)


async def test_a_lost_write_nobody_waited_for_fails_its_owner_s_next_awaited_call_once(tmp_path: Path) -> None:
    store = AsyncStore(lambda: LosesOneEvent(SQLiteBackend(tmp_path / "s.db")))
    for run in ("a", "b"):
        await store.call("create_run", run, "w", {})
    store.submit_for("a", "append_event", "run", "a", "lost", {})
    await store.call("ping")  # a later commit: the loss is known by now
    assert await store.call_for("b", "append_event", "run", "b", "fine", {})  # another run's calls go on
    with pytest.raises(StoreUnavailableError, match="an earlier write of a was lost"):
        await store.call_for("a", "finish_run", "a", RunStatus.COMPLETED, {}, None)
    assert (await store.call("get_run", "a")).status == RunStatus.PENDING  # refused, not written
    assert await store.call_for("a", "finish_run", "a", RunStatus.COMPLETED, {}, None) is True  # refused once
    store.close()
