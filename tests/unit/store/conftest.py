"""The store suite runs on SQLite and on a throwaway PostgreSQL server this run starts
(initdb + pg_ctl in a temp dir on a free loopback port; stopped at the end)."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nexus_ray.store import Store
from nexus_ray.store.backends import PostgresBackend, SQLiteBackend
from nexus_ray.testing import free_port

PG_BINARIES = ("initdb", "pg_ctl", "postgres")


def _as_unprivileged() -> list[str]:
    # initdb and postgres refuse to run as root: run them as nobody.
    return ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    missing = [b for b in PG_BINARIES if shutil.which(b) is None]
    if missing:
        reason = f"PostgreSQL binaries not found on PATH: {', '.join(missing)}"
        print(f"\nSKIP postgres store tests: {reason}")
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="nexus-pg-"))
    prefix = _as_unprivileged()
    if prefix:
        shutil.chown(root, "nobody")
    port = free_port()
    data = root / "data"
    subprocess.run(
        [*prefix, "initdb", "-D", str(data), "-A", "trust", "-U", "nexus", "--no-instructions"],
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        [*prefix, "pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://nexus@127.0.0.1:{port}"
    finally:
        subprocess.run([*prefix, "pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


_db_names = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def make_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], object]:
    """A factory of connections to one fresh database of the parametrised backend."""
    if request.param == "sqlite":
        return lambda: SQLiteBackend(tmp_path / "nexus.db")
    import psycopg

    server = request.getfixturevalue("postgres_server")
    name = f"t{next(_db_names)}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return lambda: PostgresBackend(f"{server}/{name}")


@pytest.fixture
def store(make_backend: Callable[[], object]) -> Iterator[Store]:
    s = Store(make_backend())  # type: ignore[arg-type]
    yield s
    s.close()
