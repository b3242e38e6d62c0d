"""A SQLite store's write-ahead log does not keep the size a burst of writes gave it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from nexus_ray.store import backends
from nexus_ray.store.backends import SQLiteBackend


def _wal_bytes(db: Path) -> int:
    return Path(f"{db}-wal").stat().st_size


def test_the_wal_is_cut_back_to_its_limit_once_checkpointed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLite reuses a WAL from its start once it is checkpointed, but keeps the file: a
    # burst of load left a 207 MB nexus.db-wal for good (measured with the default limit).
    monkeypatch.setattr(backends, "WAL_SIZE_LIMIT", 256 * 1024)
    db = tmp_path / "nexus.db"
    backend = SQLiteBackend(db, wal_checkpoint_s=0.02)
    try:
        backend.execute("CREATE TABLE t (v TEXT)")
        backend.commit()
        for _ in range(40):  # ~1.6 MB of pages in the WAL
            backend.execute("INSERT INTO t (v) VALUES (?)", ("x" * 40_000,))
            backend.commit()
        grown = _wal_bytes(db)
        assert grown > 1_000_000
        deadline = time.monotonic() + 10
        while _wal_bytes(db) > 256 * 1024 and time.monotonic() < deadline:
            time.sleep(0.05)  # the checkpointer copies the WAL back; the next write starts it over
            backend.execute("INSERT INTO t (v) VALUES ('y')")
            backend.commit()
        assert _wal_bytes(db) <= 256 * 1024, f"the WAL stayed at {_wal_bytes(db)} bytes (was {grown})"
        assert backend.execute("SELECT count(*) FROM t")[0][0] > 40  # nothing was lost on the way
    finally:
        backend.close()
