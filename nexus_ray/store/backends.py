"""Database connections: SQLite (embedded default, WAL) and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from ..errors import ConfigurationError, RuntimeUnavailableError, StoreUnavailableError

logger = logging.getLogger("nexus_ray.store")
WAL_SIZE_LIMIT = 64 * 2**20  # bytes of WAL file kept once SQLite starts the WAL over


class CommitUnknownError(Exception):
    """The connection was lost while the database committed: the transaction may be stored
    or not, so its writes must not be made again as if they were not."""


class Backend(Protocol):
    """What the store needs from a database: run SQL written with ``?`` placeholders."""

    name: str

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement inside the current transaction; rows (empty when none)."""
        ...

    def changes(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one writing statement inside the current transaction; the number of rows it
        inserted, updated or deleted (cheaper than ``RETURNING`` when that is all one needs)."""
        ...

    def insert_rows(self, head: str, rows: list[tuple[Any, ...]]) -> int:
        """Insert ``rows`` with multi-row statements (``head`` is ``INSERT INTO t (...) VALUES ``)
        inside the current transaction. Stops at the first statement that violates a unique
        key (that statement inserts nothing; the transaction goes on); how many rows went in."""
        ...

    def begin_write(self) -> None:
        """Start a transaction that will write (before its first statement)."""
        ...

    def lock(self, name: str) -> None:
        """Hold the lock ``name`` until the current transaction ends, so that a count and
        the insert it allows cannot interleave with another connection's."""
        ...

    def table_exists(self, name: str) -> bool:
        """Whether the table ``name`` exists (in the current transaction)."""
        ...

    def commit(self) -> None:
        """Commit the current transaction (CommitUnknownError: whether it did is unknown)."""
        ...

    def rollback(self) -> None:
        """Abandon the current transaction."""
        ...

    def close(self) -> None:
        """Close the connection."""
        ...


class SQLiteBackend:
    """One SQLite connection in WAL mode (readers never block the writer).

    ``synchronous=NORMAL`` in WAL mode survives a process crash (SIGKILL) without losing
    a committed transaction; only an OS crash or power loss can drop the last ones.
    The WAL is copied back into the database by a background thread (PASSIVE checkpoints,
    which never block writers) instead of by whichever commit crosses the auto-checkpoint
    threshold: that commit, and every one queued behind it, stalled for its fsync.
    Once SQLite starts the WAL over, the file is cut back to ``WAL_SIZE_LIMIT``: it keeps
    the size a burst gave it otherwise (207 MB for good after 2 minutes of load here).
    """

    name = "sqlite"

    def __init__(self, path: Path, wal_checkpoint_s: float = 1.0) -> None:
        self.path = path
        self.conn = _open(path)
        self.conn.execute("PRAGMA wal_autocheckpoint=0")
        self._cur = self.conn.cursor()  # reused: saves making a cursor per statement
        self._stop = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_wal, args=(wal_checkpoint_s,), name="nexus-wal-checkpoint", daemon=True
        )
        self._checkpointer.start()

    def _checkpoint_wal(self, every_s: float) -> None:
        conn = _connect(self.path)
        try:
            while not self._stop.wait(every_s):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # busy or locked: the next round catches up
                    logger.debug("WAL checkpoint skipped: %s", exc)
        finally:
            conn.close()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if not self.conn.in_transaction:
            self._begin(write=_writes(sql))
        return self._cur.execute(sql, params).fetchall()

    def changes(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        if not self.conn.in_transaction:
            self._begin(write=True)
        return self._cur.execute(sql, params).rowcount

    def insert_rows(self, head: str, rows: list[tuple[Any, ...]]) -> int:
        if not self.conn.in_transaction:
            self._begin(write=True)
        done = 0
        for chunk in row_chunks(rows):
            try:
                self._cur.execute(values_sql(head, len(chunk), len(chunk[0])), [v for row in chunk for v in row])
            except sqlite3.IntegrityError:  # SQLite undid that statement only
                return done
            done += len(chunk)
        return done

    def begin_write(self) -> None:
        # A transaction that reads first and writes later must take the write lock at
        # BEGIN: a deferred one that another process wrote past cannot be upgraded, and
        # SQLite answers "database is locked" at once, whatever the busy timeout.
        self._begin(write=True)

    def lock(self, name: str) -> None:
        self._begin(write=True)  # the database's write lock: every writer waits for it

    def table_exists(self, name: str) -> bool:
        return bool(self.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)))

    # Whether a transaction is open is asked of SQLite (conn.in_transaction), never kept
    # here: SQLite ends a transaction by itself on some errors (a full disk, an I/O error),
    # and a flag of ours then said "open" for ever: every later commit failed ("no
    # transaction is active") while each statement committed on its own.
    def _begin(self, write: bool) -> None:
        """Open the transaction unless one is open (a writing one takes the lock now)."""
        if not self.conn.in_transaction:
            self._cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    def commit(self) -> None:
        if self.conn.in_transaction:
            self._cur.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self._cur.execute("ROLLBACK")

    def close(self) -> None:
        self._stop.set()
        self._checkpointer.join(timeout=5)
        self.conn.close()


def _open(path: Path) -> sqlite3.Connection:
    """The store's connection, or an error that names the path and what to set."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _connect(path)
    except (OSError, sqlite3.Error) as exc:
        raise RuntimeUnavailableError(
            f"Cannot open the SQLite store at {path}: {exc}. NEXUS_HOME (or NEXUS_STORE_URL=sqlite:///PATH) "
            "must name a directory this process can create and write.",
            store=str(path),
        ) from None


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    _wal_mode(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
    return conn


def _wal_mode(conn: sqlite3.Connection, wait_s: float = 30.0) -> None:
    """Put the database in WAL mode. Switching a new one needs a lock that SQLite does not
    wait for: of 8 processes opening a new store at once, one in 40 got "database is
    locked" here (a cluster's hosts at their first start)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _writes(sql: str) -> bool:
    return not sql.lstrip().upper().startswith("SELECT")


class PostgresBackend:
    """One psycopg 3 connection; ``?`` placeholders become ``%s``."""

    name = "postgresql"

    def __init__(self, url: str) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:  # pragma: no cover - psycopg is a dependency
            raise RuntimeUnavailableError("PostgreSQL store needs psycopg: pip install 'psycopg[binary]'.") from exc
        self.url = url
        self.conn = self._connect()

    def _connect(self) -> Any:
        import psycopg
        from psycopg.conninfo import make_conninfo

        try:
            return psycopg.connect(make_conninfo("", **connection_settings(self.url)), autocommit=False)
        except psycopg.OperationalError as exc:  # a store failure: a run waiting on it waits for the store
            raise StoreUnavailableError(
                f"Cannot connect to the PostgreSQL store at {_redact(self.url)}: {str(exc).strip()}",
                store=_redact(self.url),
            ) from None

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._cursor(sql, params) as cur:
            return list(cur.fetchall()) if cur.description else []

    def changes(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        with self._cursor(sql, params) as cur:
            return int(cur.rowcount)

    @contextmanager
    def _cursor(self, sql: str, params: tuple[Any, ...]) -> Iterator[Any]:
        """A cursor that has run ``sql``."""
        if self.conn.closed:  # lost (server restarted): connect again at a transaction's start
            self.conn = self._connect()
        with self.conn.cursor() as cur:
            cur.execute(sql.replace("?", "%s"), params)
            yield cur

    def insert_rows(self, head: str, rows: list[tuple[Any, ...]]) -> int:
        import psycopg

        done = 0
        for chunk in row_chunks(rows):
            values = tuple(v for row in chunk for v in row)
            if len(chunk) == 1:  # one row needs no savepoint: nothing or all of it goes in
                if not self.changes(values_sql(head, 1, len(values)) + " ON CONFLICT DO NOTHING", values):
                    return done
                done += 1
                continue
            # A failed statement aborts a PostgreSQL transaction: a savepoint keeps it going.
            self.execute("SAVEPOINT nexus_rows")
            try:
                self.execute(values_sql(head, len(chunk), len(chunk[0])), values)
            except psycopg.IntegrityError:
                self.execute("ROLLBACK TO SAVEPOINT nexus_rows")
                return done
            self.execute("RELEASE SAVEPOINT nexus_rows")
            done += len(chunk)
        return done

    def begin_write(self) -> None:
        pass  # psycopg opens the transaction at the first statement; row locks do the rest

    def lock(self, name: str) -> None:
        # Row locks cannot stop a COUNT and an INSERT of two connections from interleaving
        # (READ COMMITTED sees no phantom): an advisory lock on the name does.
        self.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (name,))

    def table_exists(self, name: str) -> bool:
        return bool(self.execute("SELECT to_regclass(?) IS NOT NULL", (name,))[0][0])

    def commit(self) -> None:
        import psycopg

        try:
            self.conn.commit()
        except psycopg.OperationalError as exc:
            if not self.conn.closed:
                raise
            raise CommitUnknownError(f"the connection was lost while committing: {str(exc).strip()}") from exc

    def rollback(self) -> None:
        if not self.conn.closed:
            self.conn.rollback()

    def close(self) -> None:
        self.conn.close()


# Without these, libpq waits for ever: for a server that accepts connections and never
# answers, and on a connection whose server vanished without closing it (a machine that
# died, a failover), until the kernel gives up hours later. The host's store thread, and
# with it every durable run on the host, would wait as long.
CONNECTION_DEFAULTS = {
    "connect_timeout": "10",  # seconds
    "keepalives": "1",
    "keepalives_idle": "30",  # seconds idle before the first probe
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",  # ms that sent data may stay unacknowledged
}


def connection_settings(url: str) -> dict[str, str]:
    """libpq settings for ``url``: its own, and CONNECTION_DEFAULTS for those it leaves out."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        own = {key: str(value) for key, value in conninfo_to_dict(url).items() if value is not None}
    except ProgrammingError as exc:
        raise ConfigurationError(
            f"NEXUS_STORE_URL is not a PostgreSQL URL libpq accepts ({_redact(url)}): {str(exc).strip()}",
            store=_redact(url),
        ) from None
    return {**CONNECTION_DEFAULTS, **own}


MAX_ROWS_PER_STATEMENT = 128


def row_chunks(rows: list[tuple[Any, ...]]) -> Iterator[list[tuple[Any, ...]]]:
    """``rows`` in runs of powers of two up to 128 rows, so a connection prepares at most
    eight statement shapes per table, not one per count."""
    start = 0
    while start < len(rows):
        size = 1 << (min(len(rows) - start, MAX_ROWS_PER_STATEMENT).bit_length() - 1)
        yield rows[start : start + size]
        start += size


@functools.lru_cache(maxsize=64)
def values_sql(head: str, rows: int, width: int) -> str:
    """``head`` followed by ``rows`` groups of ``width`` placeholders."""
    group = "(" + ", ".join("?" * width) + ")"
    return head + ", ".join([group] * rows)


def _redact(url: str) -> str:
    """The URL without its password (URLs end up in error messages and logs)."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    creds, host = rest.rsplit("@", 1)
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in creds else f"{scheme}://{user}@{host}"
