"""The store: durable truth (SQLite embedded by default, PostgreSQL for clusters)."""

from __future__ import annotations

from pathlib import Path

from .async_store import AsyncStore
from .backends import PostgresBackend, SQLiteBackend
from .records import NodeCheckpoint, RunRecord, SessionRecord
from .store import Store, StoreVersionError


def open_store(url: str | None, home: Path) -> Store:
    """``postgresql://...`` → PostgreSQL; otherwise SQLite at ``home/nexus.db``."""
    if url and url.startswith(("postgresql://", "postgres://")):
        return Store(PostgresBackend(url))
    if url and url.startswith("sqlite:///"):
        return Store(SQLiteBackend(Path(url.removeprefix("sqlite:///"))))
    return Store(SQLiteBackend(home / "nexus.db"))


__all__ = ["AsyncStore", "NodeCheckpoint", "RunRecord", "SessionRecord", "Store", "StoreVersionError", "open_store"]
