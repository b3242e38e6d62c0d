"""The runs table's indexes serve its queries (SQLite's plans), and only the id, workflow
and tenant indexes hold every run (the others are partial), so each commit writes fewer
index pages."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nexus_ray.store import Store
from nexus_ray.store.backends import SQLiteBackend


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(SQLiteBackend(tmp_path / "nexus.db"))
    yield store
    store.close()


def plans(store: Store, call: Callable[[], object]) -> list[str]:
    """The query plan of each statement on ``runs`` that ``call`` ran (besides its inserts)."""
    conn: sqlite3.Connection = store.backend.conn  # type: ignore[attr-defined]
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    try:
        call()
    finally:
        conn.set_trace_callback(None)
    on_runs = [s for s in statements if " runs " in f"{s} " and not s.lstrip().upper().startswith("INSERT")]
    return [" | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {s}")) for s in on_runs]


def test_listing_by_status_other_than_completed_uses_the_not_completed_index(sqlite_store: Store) -> None:
    (plan,) = plans(sqlite_store, lambda: sqlite_store.list_runs(status="failed", tenant_tag=""))  # as channels ask
    assert "USING INDEX runs_not_completed" in plan and "TEMP B-TREE" not in plan  # already in run id order
    (plan,) = plans(sqlite_store, lambda: sqlite_store.list_runs(status="running"))
    assert "USING INDEX runs_not_completed" in plan


def test_listing_by_session_uses_the_session_index(sqlite_store: Store) -> None:
    (plan,) = plans(sqlite_store, lambda: sqlite_store.list_runs(session_id="s1"))
    assert "USING INDEX runs_by_session" in plan


def test_adoption_and_the_tenant_limit_scan_only_runs_not_completed(sqlite_store: Store) -> None:
    adopt = plans(sqlite_store, lambda: sqlite_store.adopt_orphans("h1", 10.0))
    assert any("USING INDEX runs_not_completed" in p for p in adopt), adopt
    limited = plans(sqlite_store, lambda: sqlite_store.create_run("r1", "wf", {}, owner="h", max_active_per_tenant=5))
    assert any("COVERING INDEX runs_not_completed (status=? AND tenant_tag=?)" in p for p in limited), limited


def test_only_the_id_workflow_and_tenant_indexes_hold_every_run(sqlite_store: Store) -> None:
    conn: sqlite3.Connection = sqlite_store.backend.conn  # type: ignore[attr-defined]
    partial = {row[1]: bool(row[4]) for row in conn.execute("PRAGMA index_list(runs)")}  # name -> partial
    assert partial == {
        "sqlite_autoindex_runs_1": False,
        "runs_by_workflow": False,
        "runs_by_tenant": False,
        "runs_by_session": True,
        "runs_not_completed": True,
    }
