"""A throwaway PostgreSQL server for tests: initdb + pg_ctl in a temp dir on a free
loopback port (as ``nobody`` when run as root), stopped and removed afterwards."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nexus_ray.testing import free_port

PG_BINARIES = ("initdb", "pg_ctl", "postgres")
_db_names = itertools.count()


def missing_binaries() -> list[str]:
    """The PostgreSQL server binaries not on PATH (the tests that need them skip, saying so)."""
    return [b for b in PG_BINARIES if shutil.which(b) is None]


def _as_unprivileged() -> list[str]:
    # initdb and postgres refuse to run as root: run them as nobody.
    return ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 else []


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A running server's URL without a database name (``postgresql://nexus@127.0.0.1:PORT``)."""
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


def new_database(server: str) -> str:
    """A fresh database on ``server``; its URL."""
    import psycopg

    name = f"t{next(_db_names)}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server}/{name}"
