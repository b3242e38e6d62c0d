"""A run on a real PostgreSQL store that refuses connections for a while: its caller
waits and gets the result, and a node's dependents start only once its checkpoint is
really committed."""

from __future__ import annotations

import asyncio
import itertools

import psycopg
import pytest

from nexus_ray import Nexus, WorkflowBuilder
from nexus_ray.runtime.ids import new_run_id
from nexus_ray.runtime.run_service import RunService
from nexus_ray.store import Store
from nexus_ray.store.backends import CommitUnknownError, PostgresBackend

_names = itertools.count()


async def test_a_run_outlives_a_store_that_refuses_connections_and_its_dependent_node_runs_once(
    postgres_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, a connection the backend could not open again was not taken for a store
    failure (its error had no database error as its cause): every caller got a 503 at
    once. And the commit of a node's checkpoint that failed was reported done, so the
    dependent node ran, and ran again when the run was resumed. The lease maintenance
    says what it cannot reach in one line a round (it logged a traceback each time)."""
    name = f"outage{next(_names)}"
    ran: list[str] = []

    async def slow(x: int) -> int:
        ran.append("slow")
        await asyncio.sleep(0.5)
        return x + 1

    def after(y: int) -> int:
        ran.append("after")
        return y * 2

    app = Nexus(port=0)
    app.register(
        "w",
        WorkflowBuilder()
        .add_node(slow, "slow")
        .add_node(after, "after")
        .add_connection("slow", "result", "after", "y"),
    )
    workflow = app.workflows["w"].workflow
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        url = f"{postgres_server}/{name}"
        factory = lambda: Store(PostgresBackend(url))  # noqa: E731
        service = RunService("h0", {"w": workflow}, store_factory=factory, lease_s=0.9)
        service.start_maintenance()  # a round every 0.3 s: the outage outlasts the lease
        try:
            run_id = new_run_id()
            run = asyncio.ensure_future(service.execute("w", workflow.resolve_inputs({"x": 1}, "w"), run_id))
            await asyncio.sleep(0.2)  # the node runs; its checkpoint is due at 0.5 s
            admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            with caplog.at_level("WARNING", logger="nexus_ray.runtime"):
                await asyncio.sleep(1.0)
            assert not run.done()  # waiting for the store, not failed
            admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
            result = await asyncio.wait_for(run, 30)
            assert result["status"] == "completed", result
            assert result["outputs"]["after"] == {"result": 4}
            assert ran == ["slow", "slow", "after"]  # the lost checkpoint's node again, its dependent once
            events = await service.store.call("list_events", "run", run_id)  # type: ignore[union-attr]
            resumed = [e["data"] for e in events if e["type"] == "run.resumed"]
            assert len(resumed) == 1 and resumed[0]["cause"] == "store"
            rounds = [r for r in caplog.records if r.getMessage().startswith("lease maintenance on h0: ")]
            assert rounds and all(r.exc_info is None for r in rounds)
            assert "Cannot connect to the PostgreSQL store" in rounds[0].getMessage()
        finally:
            service.close()


def test_a_connection_lost_at_commit_is_an_unknown_outcome_not_a_failed_write(postgres_server: str) -> None:
    """PostgreSQL may have committed a transaction whose connection died at COMMIT: the
    backend says so (CommitUnknownError) instead of a plain error the store would treat
    as nothing written."""
    name = f"commit{next(_names)}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        backend = PostgresBackend(f"{postgres_server}/{name}")
        try:
            backend.execute("CREATE TABLE t (x int)")
            backend.commit()
            pid = backend.execute("SELECT pg_backend_pid()")[0][0]
            backend.execute("INSERT INTO t VALUES (1)")
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with pytest.raises(CommitUnknownError, match="lost while committing"):
                backend.commit()
            assert backend.execute("SELECT COUNT(*) FROM t") == [(0,)]  # connected again
        finally:
            backend.close()
