"""The store suite runs on SQLite and on a throwaway PostgreSQL server this run starts
(initdb + pg_ctl in a temp dir on a free loopback port; stopped at the end)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nexus_ray.store import Store
from nexus_ray.store.backends import PostgresBackend, SQLiteBackend

from ...postgres import missing_binaries, new_database, throwaway_postgres


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    missing = missing_binaries()
    if missing:
        reason = f"PostgreSQL binaries not found on PATH: {', '.join(missing)}"
        print(f"\nSKIP postgres store tests: {reason}")
        pytest.skip(reason)
    with throwaway_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], object]:
    """A factory of connections to one fresh database of the parametrised backend."""
    if request.param == "sqlite":
        return lambda: SQLiteBackend(tmp_path / "nexus.db")
    url = new_database(request.getfixturevalue("postgres_server"))
    return lambda: PostgresBackend(url)


@pytest.fixture
def store(make_backend: Callable[[], object]) -> Iterator[Store]:
    s = Store(make_backend())  # type: ignore[arg-type]
    yield s
    s.close()
