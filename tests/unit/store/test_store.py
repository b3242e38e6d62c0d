"""One suite, both backends: schema versions, runs, checkpoints, listing, leases."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nexus_ray.store import Store, StoreVersionError
from nexus_ray.store.schema import MIGRATIONS, SCHEMA_VERSION
from nexus_ray.workflow import NodeStatus, RunStatus
from nexus_ray.workflow.events import node_event


def test_new_store_is_at_current_version_and_reopens(store: Store, make_backend: Callable[[], object]) -> None:
    assert store.schema_version() == SCHEMA_VERSION
    again = Store(make_backend())  # type: ignore[arg-type]
    assert again.schema_version() == SCHEMA_VERSION
    again.close()


def test_newer_store_refuses_to_start(store: Store, make_backend: Callable[[], object]) -> None:
    store.backend.execute("UPDATE nexus_meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    store.backend.commit()
    with pytest.raises(StoreVersionError, match=f"schema version {SCHEMA_VERSION + 1}, newer") as err:
        Store(make_backend())  # type: ignore[arg-type]
    assert err.value.details["supported_version"] == SCHEMA_VERSION


def test_older_store_is_migrated_keeping_its_data(make_backend: Callable[[], object]) -> None:
    backend = make_backend()
    for statement in MIGRATIONS[0]:  # a version-1 store, as the first release wrote it
        backend.execute(statement)  # type: ignore[attr-defined]
    backend.execute("INSERT INTO nexus_meta (key, value) VALUES ('schema_version', '1')")  # type: ignore[attr-defined]
    backend.execute(  # type: ignore[attr-defined]
        "INSERT INTO runs (run_id, workflow, status, inputs, created_at, updated_at)"
        " VALUES ('r1', 'w', 'completed', '{}', 1, 2)"
    )
    backend.commit()  # type: ignore[attr-defined]
    store = Store(backend)  # type: ignore[arg-type]
    assert store.schema_version() == SCHEMA_VERSION
    run = store.get_run("r1")
    assert run is not None and run.status == RunStatus.COMPLETED and run.session_id is None
    store.close()


def test_node_checkpoints_of_an_older_store_become_its_runs_node_events(make_backend: Callable[[], object]) -> None:
    """Stores older than schema 6 kept node states in node_checkpoints, and those older
    than schema 5 wrote no node events beside them. Before, schema 6 dropped the table
    with them: resumed, an unfinished run ran its completed nodes again, and a finished
    run reported no nodes."""
    backend = make_backend()
    for version in range(5):  # a version-5 store (run logs without node events)
        for statement in MIGRATIONS[version]:
            backend.execute(statement)  # type: ignore[attr-defined]
    backend.execute("INSERT INTO nexus_meta (key, value) VALUES ('schema_version', '5')")  # type: ignore[attr-defined]
    runs = [("old", "running", "'{}'"), ("done", "completed", '\'{"b": {"result": 3}}\''), ("new", "running", "NULL")]
    for run_id, status, outputs in runs:
        backend.execute(  # type: ignore[attr-defined]
            "INSERT INTO runs (run_id, workflow, status, inputs, outputs, created_at, updated_at)"
            f" VALUES ('{run_id}', 'w', '{status}', '{{}}', {outputs}, 100, 100)"
        )
    checkpoint = (
        "INSERT INTO node_checkpoints (run_id, node_id, status, outputs, error, reason, started_at, duration_ms)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    )
    for row in [
        ("old", "a", "completed", '{"result": 1}', None, None, 101.0, 500.0),
        ("old", "b", "running", None, None, None, 102.0, None),
        ("done", "a", "completed", '{"result": 2}', None, None, 101.0, 20.0),
        ("done", "x", "skipped", None, None, "branch not taken", None, None),
        ("done", "b", "completed", '{"result": 3}', None, None, 103.0, 1.5),
        ("new", "a", "completed", '{"result": 4}', None, None, 101.0, 2.0),  # also in its log
    ]:
        backend.execute(checkpoint, row)  # type: ignore[attr-defined]
    event = "INSERT INTO events (scope, scope_id, seq, type, data, created_at) VALUES ('run', 'new', ?, ?, ?, ?)"
    backend.execute(event, (1, "run.started", '{"workflow": "w"}', 100.5))  # type: ignore[attr-defined]
    backend.execute(event, (2, "node.completed", '{"node": "a", "outputs": {"result": 4}}', 101.0))  # type: ignore[attr-defined]
    backend.commit()  # type: ignore[attr-defined]

    store = Store(backend)  # type: ignore[arg-type]
    old = store.get_run("old")
    assert old is not None and set(old.nodes) == {"a", "b"}
    assert old.nodes["a"].status == NodeStatus.COMPLETED and old.nodes["a"].outputs == {"result": 1}
    assert old.nodes["a"].started_at == 101.0 and old.nodes["a"].duration_ms == 500.0
    assert old.nodes["b"].status == NodeStatus.RUNNING and old.nodes["b"].started_at == 102.0
    done = store.get_run("done")
    assert done is not None and [done.nodes[n].status for n in ("a", "x", "b")] == ["completed", "skipped", "completed"]
    assert done.nodes["x"].reason == "branch not taken" and done.nodes["b"].outputs == {"result": 3}
    assert [e["type"] for e in store.list_events("run", "new")] == ["run.started", "node.completed"]  # left as it was
    old_log = store.list_events("run", "old")
    assert [(e["seq"], e["type"], e["created_at"]) for e in old_log] == [
        (1, "node.started", 101.0),
        (2, "node.completed", 101.5),
        (3, "node.started", 102.0),
    ]
    store.close()


def open_at_once(make_backend: Callable[[], object], count: int = 6) -> list[str]:
    """Open ``count`` stores on one database from as many threads at the same moment, as
    a cluster's hosts do at its first start or after an upgrade; the errors."""
    start, errors = threading.Barrier(count), []

    def open_one() -> None:
        try:
            start.wait()
            Store(make_backend()).close()  # type: ignore[arg-type]
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=open_one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def test_stores_opened_at_once_on_a_new_database_all_start(make_backend: Callable[[], object]) -> None:
    """Before, all but one failed ("table runs already exists"; on PostgreSQL a duplicate
    key of pg_type): each read version 0 and ran the migrations itself."""
    assert open_at_once(make_backend) == []
    store = Store(make_backend())  # type: ignore[arg-type]
    assert store.schema_version() == SCHEMA_VERSION
    store.close()


def test_stores_opened_at_once_on_an_older_database_migrate_it_once(make_backend: Callable[[], object]) -> None:
    backend = make_backend()
    for statement in MIGRATIONS[0]:  # a version-1 store
        backend.execute(statement)  # type: ignore[attr-defined]
    backend.execute("INSERT INTO nexus_meta (key, value) VALUES ('schema_version', '1')")  # type: ignore[attr-defined]
    backend.commit()  # type: ignore[attr-defined]
    assert open_at_once(make_backend) == []  # before: "duplicate column name: session_id"
    store = Store(backend)  # type: ignore[arg-type]
    assert store.schema_version() == SCHEMA_VERSION
    store.close()


def node_state(store: Store, run_id: str, node_id: str, status: NodeStatus, **fields: Any) -> None:
    """What a host records when a node changes state: its node.* event."""
    store.append_event("run", run_id, *node_event(node_id, status, **fields))


def test_run_lifecycle_with_checkpoints(store: Store) -> None:
    assert store.create_run("r1", "wf", {"a": {"x": 5}}, owner="h0", lease_s=30)
    assert not store.create_run("r1", "other", {}, owner="h9")  # exists: unchanged
    run = store.get_run("r1")
    assert run is not None and run.status == RunStatus.RUNNING and run.owner == "h0"
    assert run.inputs == {"a": {"x": 5}} and run.lease_expires > time.time() + 20
    node_state(store, "r1", "a", NodeStatus.RUNNING)
    node_state(store, "r1", "a", NodeStatus.COMPLETED, outputs={"result": 10}, duration_ms=2.0)
    node_state(store, "r1", "b", NodeStatus.SKIPPED, reason="branch not taken")
    assert store.finish_run("r1", RunStatus.COMPLETED, {"a": {"result": 10}}, None)
    assert not store.finish_run("r1", RunStatus.FAILED, None, {"node": "a"})  # already terminal
    run = store.get_run("r1")
    assert run is not None and run.done and run.owner is None
    assert run.nodes["a"].outputs == {"result": 10} and run.nodes["a"].status == NodeStatus.COMPLETED
    assert run.nodes["b"].reason == "branch not taken"
    result = run.result()
    assert result.outputs == {"a": {"result": 10}} and result.status == RunStatus.COMPLETED
    assert store.get_run("missing") is None


def test_node_states_are_read_back_from_the_runs_node_events(store: Store) -> None:
    store.create_run("r1", "wf", {}, owner="h0", lease_s=30)
    node_state(store, "r1", "a", NodeStatus.RUNNING)
    started_at = store.list_events("run", "r1", "node.started")[0]["created_at"]
    node_state(store, "r1", "a", NodeStatus.FAILED, error={"type": "ValueError"})
    node_state(store, "r1", "b", NodeStatus.RUNNING)
    run = store.get_run("r1")
    assert run is not None and run.nodes["b"].status == NodeStatus.RUNNING
    a = run.nodes["a"]
    assert (a.status, a.error, a.started_at) == (NodeStatus.FAILED, {"type": "ValueError"}, started_at)
    # resumed after a crash: the node runs again and completes; its last event is its state
    node_state(store, "r1", "a", NodeStatus.RUNNING)
    node_state(store, "r1", "a", NodeStatus.COMPLETED, outputs={"v": 1}, duration_ms=3.0)
    run = store.get_run("r1")
    assert run is not None
    a = run.nodes["a"]
    assert (a.status, a.outputs, a.duration_ms, a.error) == (NodeStatus.COMPLETED, {"v": 1}, 3.0, None)
    with pytest.raises(Exception, match="node_checkpoints"):  # the second copy is gone (schema 6)
        store.backend.execute("SELECT COUNT(*) FROM node_checkpoints")
    store.backend.rollback()


def test_list_runs_filters_and_pages(store: Store) -> None:
    for i in range(5):
        store.create_run(f"r{i}", "even" if i % 2 == 0 else "odd", {}, session_id="s1" if i < 2 else None)
    assert [r.run_id for r in store.list_runs()] == ["r4", "r3", "r2", "r1", "r0"]
    assert [r.run_id for r in store.list_runs(workflow="odd")] == ["r3", "r1"]
    assert [r.run_id for r in store.list_runs(session_id="s1")] == ["r1", "r0"]
    assert [r.run_id for r in store.list_runs(status="pending", limit=2)] == ["r4", "r3"]
    assert [r.run_id for r in store.list_runs(limit=2, before="r3")] == ["r2", "r1"]


def test_leases_renew_and_orphans_are_adopted_once(store: Store) -> None:
    store.create_run("live", "w", {}, owner="h0", lease_s=60)
    store.create_run("dead", "w", {}, owner="h1", lease_s=0.01)
    store.create_run("queued", "w", {})
    store.create_run("finished", "w", {}, owner="h1", lease_s=0.01)
    store.finish_run("finished", RunStatus.COMPLETED, {}, None)
    time.sleep(0.05)
    assert store.renew_leases("h0", ["live", "dead"], 60) == ["live"]
    adopted = store.adopt_orphans("h2", lease_s=60)
    assert sorted(adopted) == ["dead", "queued"]
    assert store.adopt_orphans("h3", lease_s=60) == []
    dead = store.get_run("dead")
    assert dead is not None and dead.owner == "h2" and dead.status == RunStatus.RUNNING


def test_two_hosts_adopting_at_once_adopt_an_orphan_once(store: Store, make_backend: Callable[[], object]) -> None:
    """The second adoption waits for the first one's row locks, then must see the new
    lease: on PostgreSQL the outer UPDATE has to say so itself (its subquery's snapshot
    is older)."""
    store.create_run("dead", "w", {}, owner="h1", lease_s=0.01)
    time.sleep(0.05)
    other = Store(make_backend())  # type: ignore[arg-type]
    first_adopted = threading.Event()
    second: list[list[str]] = []
    thread = threading.Thread(target=lambda: (first_adopted.wait(10), second.append(other.adopt_orphans("h3", 60))))
    thread.start()
    with store.transaction(write=True):
        assert store.adopt_orphans("h2", lease_s=60) == ["dead"]
        first_adopted.set()
        time.sleep(0.5)  # the other host adopts now, or waits for this commit
    thread.join(10)
    other.close()
    assert second == [[]]
    dead = store.get_run("dead")
    assert dead is not None and dead.owner == "h2"


def test_values_that_are_not_json_are_refused_clearly_as_the_caller_s_mistake(store: Store) -> None:
    from nexus_ray import InvalidRequestError

    with pytest.raises(InvalidRequestError, match="cannot be stored as JSON"):
        store.create_run("r", "w", {"n": {"x": object()}})
    assert store.get_run("r") is None


def test_transactions_nest_and_roll_back_together(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.create_run("a", "w", {})
        with store.transaction():
            store.create_run("b", "w", {})
        raise RuntimeError("abort")
    assert store.get_run("a") is None and store.get_run("b") is None
    with store.transaction():
        store.create_run("c", "w", {})
        store.create_run("d", "w", {})
    assert store.get_run("c") is not None and store.get_run("d") is not None


def test_sessions_versions_ttl_and_listing(store: Store) -> None:
    created = store.create_session("s1", {"a": 1}, ttl_s=None)
    assert created.version == 1 and store.get_session("s1") == created
    saved = store.save_session("s1", {"a": 2}, expected_version=1)
    assert saved is not None and saved.version == 2 and saved.state == {"a": 2}
    assert store.save_session("s1", {"a": 3}, expected_version=1) is None  # stale version
    assert store.session_version("s1") == 2 and store.session_version("nope") is None
    assert store.session_version("a\x00b") is None  # no session can have that id
    store.create_session("s2", {}, ttl_s=0.05)
    assert [s.session_id for s in store.list_sessions()] == ["s2", "s1"]
    time.sleep(0.1)
    assert store.get_session("s2") is None and store.save_session("s2", {}, 1) is None
    assert store.session_version("s2") is None  # expired
    assert [s.session_id for s in store.list_sessions()] == ["s1"]
    assert store.purge_expired_sessions() == 1
    assert store.delete_session("s1") and not store.delete_session("s1")
    assert store.get_session("s1") is None and store.session_version("s1") is None


def test_several_turns_saved_at_once_keep_a_version_and_event_each(store: Store) -> None:
    store.create_session("s", {"n": 0}, ttl_s=None)
    saved = store.save_session_states("s", [{"n": 1}, {"n": 2}, {"n": 3}], expected_version=1)
    assert saved is not None and [(r.version, r.state) for r in saved] == [(2, {"n": 1}), (3, {"n": 2}), (4, {"n": 3})]
    assert store.get_session("s") == saved[-1]
    assert store.save_session_states("s", [{"n": 9}], expected_version=3) is None  # stale: nothing written
    updates = store.list_events("session", "s", "session.updated")
    assert [e["data"]["version"] for e in updates] == [2, 3, 4]


def test_session_ttl_slides_on_change(store: Store) -> None:
    first = store.create_session("s", {}, ttl_s=60)
    time.sleep(0.02)
    saved = store.save_session("s", {"x": 1}, 1)
    assert saved is not None and saved.expires_at is not None and first.expires_at is not None
    assert saved.expires_at > first.expires_at


def test_session_changes_append_ordered_events(store: Store) -> None:
    store.create_session("s", {"a": 1}, None, {"channel": "api"})
    store.save_session("s", {"a": 2}, 1)
    store.append_event("session", "s", "custom.note", {"text": "hi"})
    events = store.list_events("session", "s")
    expected = [(1, "session.created"), (2, "session.updated"), (3, "custom.note")]
    assert [(e["seq"], e["type"]) for e in events] == expected
    assert events[0]["data"] == {"state": {"a": 1}, "version": 1, "channel": "api"}
    assert events[1]["data"] == {"state": {"a": 2}, "version": 2}
    assert [e["seq"] for e in store.list_events("session", "s", after=2)] == [3]
    assert [e["type"] for e in store.list_events("session", "s", event_type="custom.note")] == ["custom.note"]
    assert store.list_events("session", "other") == []


def test_a_deleted_session_s_log_keeps_only_its_end(store: Store) -> None:
    # The log held every state the session had (session.created/updated carry it): a
    # DELETE left all of it readable, over REST too, for ever.
    store.create_session("s", {"card": "4111"}, None)
    store.save_session("s", {"card": "4111", "secret": "x"}, 1)
    store.create_session("kept", {"a": 1}, None)
    assert store.delete_session("s") is True
    assert [(e["seq"], e["type"], e["data"]) for e in store.list_events("session", "s")] == [(3, "session.deleted", {})]
    assert store.last_event_seq("session", "s") == 3  # a cursor never sees a seq again
    assert [e["type"] for e in store.list_events("session", "kept")] == ["session.created"]
    assert store.delete_session("s") is False


def test_expired_sessions_are_purged_together_their_logs_numbered_on(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk of expired sessions costs the same few statements whatever its size. Before,
    it took four a session: on PostgreSQL, where each is a round trip, 105 ms a chunk of
    200 (benchmarks/bench_session_logs.py), and the host's session writes waited behind it."""
    statements: list[str] = []
    for method in ("execute", "changes", "insert_rows"):
        original = getattr(store.backend, method)

        def counted(sql: str, *args: Any, _original: Any = original) -> Any:
            statements.append(sql)
            return _original(sql, *args)

        monkeypatch.setattr(store.backend, method, counted)
    counts = []
    for size in (4, 64):  # one multi-row INSERT each (rows go in runs of powers of two)
        ids = [f"{size}-{n}" for n in range(size)]
        for n, sid in enumerate(ids):
            store.create_session(sid, {"n": n}, ttl_s=0.05)
            for version in range(1, n % 3 + 1):  # logs of 1 to 3 events
                store.save_session(sid, {"n": n + 1}, version)
        time.sleep(0.1)
        store.appended.clear()
        statements.clear()
        assert store.purge_expired_sessions(limit=100) == size
        counts.append(len(statements))
        ended = {e["session_id"]: e["seq"] for e in store.appended}  # what the store publishes
        for n, sid in enumerate(ids):
            log = store.list_events("session", sid)
            assert [(e["seq"], e["type"]) for e in log] == [(n % 3 + 2, "session.expired")]  # numbered on
            assert ended[sid] == n % 3 + 2
    assert counts[0] == counts[1], f"statements for 4 and for 64 sessions: {counts}"


def test_expired_sessions_are_purged_with_their_logs_by_their_own_host_first(store: Store) -> None:
    for sid in ("mine", "theirs", "live"):
        store.create_session(sid, {"secret": sid}, ttl_s=0.05 if sid != "live" else 60)
    time.sleep(0.1)
    assert store.purge_expired_sessions(lambda sid: sid == "mine") == 1
    assert [e["type"] for e in store.list_events("session", "mine")] == ["session.expired"]
    assert [e["type"] for e in store.list_events("session", "theirs")] == ["session.created"]  # its host's to do
    assert store.purge_expired_sessions(lambda sid: sid == "mine", orphan_after_s=0.0) == 1  # an orphan by now
    assert [e["type"] for e in store.list_events("session", "theirs")] == ["session.expired"]
    assert store.get_session("live") is not None and store.purge_expired_sessions() == 0
    assert [e["type"] for e in store.list_events("session", "live")] == ["session.created"]


def test_a_sqlite_store_that_cannot_open_names_its_path_and_the_setting(tmp_path: Path) -> None:
    from nexus_ray import RuntimeUnavailableError
    from nexus_ray.store import open_store

    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.raises(RuntimeUnavailableError, match=r"SQLite store at .*/file/nexus.db: .*NEXUS_HOME"):
        open_store(None, not_a_dir)
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("x" * 4096)
    with pytest.raises(RuntimeUnavailableError, match="notes.txt: file is not a database"):
        open_store(f"sqlite:///{not_a_db}", tmp_path)


def test_after_sqlite_ends_a_transaction_by_itself_the_store_goes_on_atomically(tmp_path: Path) -> None:
    # A full disk makes SQLite roll the transaction back itself. The backend used to keep
    # its own "in a transaction" flag, which then stayed set: the error was reported as
    # "cannot rollback", and every later commit failed while each statement autocommitted.
    import sqlite3

    from nexus_ray.store.backends import SQLiteBackend

    store = Store(SQLiteBackend(tmp_path / "s.db"))
    store.create_run("before", "w", {})
    conn = store.backend.conn  # type: ignore[attr-defined]
    conn.execute(f"PRAGMA max_page_count={conn.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        store.create_run("big", "w", {"n": {"blob": "x" * 80_000}})
    conn.execute("PRAGMA max_page_count=1073741823")
    assert store.create_run("after", "w", {}) is True
    with pytest.raises(ValueError), store.transaction(write=True):  # atomic again: all or nothing
        store.create_run("undone", "w", {})
        raise ValueError
    assert sorted(r.run_id for r in store.list_runs(limit=10)) == ["after", "before"]
    store.close()


def test_an_unreadable_schema_version_is_an_error_not_a_new_database() -> None:
    # Only a missing table means a new database; anything else (a permission, a broken
    # connection) used to read as version 0, and the migration then failed confusingly.
    import sqlite3

    class Unreadable:
        name = "sqlite"

        def table_exists(self, name: str) -> bool:
            return True

        def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
            raise sqlite3.OperationalError("permission denied for table nexus_meta")

    store = Store.__new__(Store)
    store.backend = Unreadable()  # type: ignore[assignment]
    with pytest.raises(sqlite3.OperationalError, match="permission denied"):
        store._read_schema_version()
