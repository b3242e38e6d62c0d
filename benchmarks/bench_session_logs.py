"""What trimming session event logs costs the store (``NEXUS_RUN_RETENTION_DAYS``):
``sessions`` sessions created 10 days ago, each with ``old_events`` events that old and
one of today, and a 7-day retention. The ms per ``purge_session_logs`` call (``chunk``
logs or rows) for the walk that deletes the old events, then for a walk that finds
nothing to delete (what a host's later rounds cost). Then what purging as many expired
sessions costs (each with 5 events: their logs end with ``session.expired``): the ms per
``purge_expired_sessions`` call of ``chunk`` sessions. SQLite by default; ``--postgres``
starts a throwaway PostgreSQL server (initdb/pg_ctl on PATH) and measures on it.

    python benchmarks/bench_session_logs.py [--sessions 20000] [--postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import scratch_dir, stat  # noqa: E402
from nexus_ray.store import Store  # noqa: E402
from nexus_ray.store.backends import Backend, PostgresBackend, SQLiteBackend  # noqa: E402


def session_log_retention(
    sessions: int = 20000, old_events: int = 4, chunk: int = 200, postgres: bool = False
) -> dict[str, Any]:
    """The figures described above, on a fresh store."""
    with _fresh_backend(postgres) as make:
        store = Store(make())
        try:
            _old_sessions(store, sessions, old_events)
            cutoff = time.time() - 7 * 86400
            trim, again = _walk_ms(store, cutoff, chunk), _walk_ms(store, cutoff, chunk)
            return {"backend": store.backend.name, "sessions": sessions, "trim": trim, "again": again, "chunk": chunk}
        finally:
            store.close()


@contextlib.contextmanager
def _fresh_backend(postgres: bool) -> Iterator[Callable[[], Backend]]:
    if postgres:
        from tests.postgres import new_database, throwaway_postgres

        with throwaway_postgres() as server:
            url = new_database(server)
            yield lambda: PostgresBackend(url)
        return
    with scratch_dir("nexus-bench-") as home:
        yield lambda: SQLiteBackend(home / "nexus.db")


def _old_sessions(store: Store, sessions: int, old_events: int) -> None:
    created = time.time() - 10 * 86400
    for first in range(0, sessions, 500):
        with store.transaction(write=True):
            for n in range(first, min(first + 500, sessions)):
                session_id = f"{int(created * 1000):012x}{n:020x}"
                store.create_session(session_id, {"n": n, "text": "x" * 200}, None)
                for version in range(1, old_events):
                    store.save_session(session_id, {"n": n, "text": "y" * 200}, version)
        store.backend.execute("UPDATE events SET created_at = ? WHERE scope = 'session'", (created,))
        store.backend.commit()
    with store.transaction(write=True):
        for n in range(sessions):
            store.save_session(f"{int(created * 1000):012x}{n:020x}", {"n": n}, old_events)


def session_expiry(sessions: int = 20000, chunk: int = 200, postgres: bool = False) -> dict[str, Any]:
    """ms per ``purge_expired_sessions`` call purging ``sessions`` expired sessions."""
    with _fresh_backend(postgres) as make:
        store = Store(make())
        try:
            _expired_sessions(store, sessions)
            took, purged = [], chunk
            while purged == chunk:
                started = time.perf_counter()
                purged = store.purge_expired_sessions(limit=chunk)
                took.append((time.perf_counter() - started) * 1000)
            return {"backend": store.backend.name, "sessions": sessions, "purge": _calls(took), "chunk": chunk}
        finally:
            store.close()


def _expired_sessions(store: Store, sessions: int) -> None:
    now = time.time()
    for first in range(0, sessions, 500):
        with store.transaction(write=True):
            for n in range(first, min(first + 500, sessions)):
                session_id = f"{int(now * 1000):012x}{n:020x}"
                store.create_session(session_id, {"n": n, "text": "x" * 200}, 3600)
                for version in range(1, 5):
                    store.save_session(session_id, {"n": n, "text": "y" * 200}, version)
    store.backend.execute("UPDATE sessions SET expires_at = ?", (now - 1,))
    store.backend.commit()


def _calls(took: list[float]) -> dict[str, Any]:
    return {"calls": len(took), "total_ms": round(sum(took)), "call_ms": stat(took, 1)}


def _walk_ms(store: Store, cutoff: float, chunk: int) -> dict[str, Any]:
    after: str | None = ""
    took = []
    while after is not None:
        started = time.perf_counter()
        after = store.purge_session_logs(cutoff, after, chunk)
        took.append((time.perf_counter() - started) * 1000)
    return _calls(took)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20000)
    parser.add_argument("--postgres", action="store_true", help="measure on a throwaway PostgreSQL server")
    args = parser.parse_args()
    print(session_log_retention(args.sessions, postgres=args.postgres))
    print(session_expiry(args.sessions, postgres=args.postgres))
