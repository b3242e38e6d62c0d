"""The store: durable truth for runs, sessions, their events (a run's node checkpoints
are its ``node.*`` events) and idempotency keys. One implementation over either backend."""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import pydantic_core

from ..errors import InvalidRequestError, RateLimitedError, RuntimeUnavailableError
from ..runtime.ids import time_prefix
from ..security.tenancy import tag_of
from ..stored_text import all_storable, storable
from ..workflow import NodeStatus, RunStatus
from ..workflow.events import NODE_STATUS_OF_EVENT, RUN_TERMINAL, SESSION_TERMINAL, run_end_event, run_started
from .backends import Backend
from .event_seqs import EventSeqs
from .pending_events import NODE_EVENT_TYPES, PendingEvents
from .records import NodeCheckpoint, RunRecord, SessionRecord
from .schema import MIGRATIONS, SCHEMA_VERSION
from .security_tables import SecurityTables

T = TypeVar("T")
_SESSION_COLUMNS = "session_id, state, version, created_at, updated_at, expires_at, ttl_s"
_SESSION_INSERT = (
    f"INSERT INTO sessions ({_SESSION_COLUMNS}, tenant_tag) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (session_id) DO NOTHING"
)
_ACTIVE = (RunStatus.PENDING.value, RunStatus.RUNNING.value)
_FINISHED = (RunStatus.COMPLETED.value, RunStatus.FAILED.value, RunStatus.CANCELLED.value)
_LOG_ENDS = RUN_TERMINAL | SESSION_TERMINAL
_NOT_COMPLETED = "status != 'completed'"  # the runs_not_completed index's condition, word for word
_IS_ACTIVE = f"{_NOT_COMPLETED} AND status IN (?, ?)"  # with _ACTIVE
_RUN_COLUMNS = (
    "run_id, workflow, status, inputs, outputs, error, owner, lease_expires, created_at, updated_at, "
    "finished_at, session_id"
)
_RUN_INSERT = (
    f"INSERT INTO runs ({_RUN_COLUMNS}, tenant_tag) VALUES (?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?, NULL, ?, ?)"
    " ON CONFLICT (run_id) DO NOTHING"
)
_RUN_FINISH = (
    "UPDATE runs SET status = ?, outputs = ?, error = ?, owner = NULL, lease_expires = NULL,"
    " updated_at = ?, finished_at = ? WHERE run_id = ? AND status IN (?, ?)"
)


class _SessionMoved(Exception):
    """Rolls back a transaction whose session changed meanwhile."""


class StoreVersionError(RuntimeUnavailableError):
    """The store was written by a newer nexus_ray than this one."""

    title = "Store too new"


class Store(SecurityTables):
    """Synchronous store over one connection; use it from one thread (see AsyncStore)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._depth = 0
        self._savepoints = 0
        # Events appended since the owner last cleared it (AsyncStore publishes them after
        # their commit; rolled-back ones are dropped).
        self.appended: list[dict[str, Any]] = []
        self.seqs = EventSeqs()
        self.pending = PendingEvents(backend, self.seqs, _LOG_ENDS)
        self.migrate()

    # -- schema -------------------------------------------------------------------------
    def schema_version(self) -> int:
        """The stored schema version (0 for an empty database)."""
        return self._transact(self._read_schema_version)

    def _read_schema_version(self) -> int:
        if not self.backend.table_exists("nexus_meta"):  # a new database
            return 0
        rows = self.backend.execute("SELECT value FROM nexus_meta WHERE key = 'schema_version'")
        return int(rows[0][0]) if rows else 0

    def migrate(self) -> None:
        """Bring an older store up to SCHEMA_VERSION; refuse a newer one. One transaction
        under a lock: processes that open a new or older store at once (a cluster's hosts
        at its first start, or after an upgrade) wait for the first to migrate it, then
        find it current. (Before, all but one failed: "table runs already exists".)"""
        with self.transaction(write=True):
            self.backend.lock("nexus-schema")
            version = self._read_schema_version()
            if version > SCHEMA_VERSION:
                raise StoreVersionError(
                    f"The store ({self.backend.name}) has schema version {version}, newer than this nexus_ray "
                    f"supports ({SCHEMA_VERSION}). Upgrade nexus_ray, or point NEXUS_HOME / NEXUS_STORE_URL "
                    "elsewhere.",
                    store_version=version,
                    supported_version=SCHEMA_VERSION,
                )
            while version < SCHEMA_VERSION:
                for step in MIGRATIONS[version]:
                    if isinstance(step, str):
                        self.backend.execute(step)
                    else:
                        step(self.backend)
                version += 1
                self.backend.execute(
                    "INSERT INTO nexus_meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(version),),
                )

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[None]:
        """One transaction around the block; nested blocks join the outermost one. Say
        ``write`` when the block may read before it writes (see SQLiteBackend.begin_write)."""
        if write and self._depth == 0:
            self.backend.begin_write()
        self._depth += 1
        try:
            yield
            if self._depth == 1:
                self.pending.flush()
                self.backend.commit()  # in here: a commit that fails is undone like the rest
        except BaseException:
            if self._depth == 1:
                self.backend.rollback()
                self.seqs.rollback()
                self.pending.drop()
            raise
        finally:
            self._depth -= 1
        if self._depth == 0:
            self.seqs.commit()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Like :meth:`transaction`, but inside an outer transaction a failure undoes only
        this block (a savepoint), not the outer transaction's other work."""
        if self._depth == 0:
            with self.transaction():
                yield
            return
        self._savepoints += 1
        name, mark = f"nexus_sp{self._savepoints}", len(self.appended)
        self.pending.flush()  # the outer work's events stay when this block rolls back
        self.backend.execute(f"SAVEPOINT {name}")
        try:
            with self.transaction():
                yield
            self.pending.flush()
        except BaseException:
            self.backend.execute(f"ROLLBACK TO SAVEPOINT {name}")
            self.pending.drop()
            del self.appended[mark:]
            self.seqs.rollback()
            raise
        finally:
            self._savepoints -= 1
        self.backend.execute(f"RELEASE SAVEPOINT {name}")

    def _transact(self, fn: Callable[[], T], write: bool = False) -> T:
        if self._depth:  # inside a transaction already (a group commit): just run it
            return fn()
        with self.transaction(write=write):
            return fn()

    def ping(self) -> None:
        """A round trip to the database (raises when it is not available)."""
        self._transact(lambda: self.backend.execute("SELECT 1"))

    # -- runs ---------------------------------------------------------------------------
    def create_run(
        self,
        run_id: str,
        workflow: str,
        inputs: dict[str, dict[str, Any]],
        *,
        owner: str | None = None,
        lease_s: float = 0.0,
        session_id: str | None = None,
        max_active_per_tenant: int | None = None,
        session_version: int | None = None,
        definition: Mapping[str, str] | None = None,
    ) -> bool:
        """Store a new run with its inputs (before any node starts), owned by ``owner``.
        False when a run with this id already exists (nothing is changed then). With
        ``max_active_per_tenant``, 429 when the run's tenant already has that many runs
        pending or running. ``session_version``: of the session state the run read (kept in
        its run.started event, for a resumed run's write-back); ``definition``: the nodes'
        definition digests, kept there too (see workflow/fingerprint.py)."""
        now = time.time()
        status = RunStatus.RUNNING if owner else RunStatus.PENDING
        lease = now + lease_s if owner else None
        tag = tag_of(run_id)
        row = (run_id, workflow, status.value, _dump(inputs), owner, lease, now, now, session_id, tag)

        def insert() -> bool:
            if max_active_per_tenant is not None:
                self._check_active_runs(tag, max_active_per_tenant)
            if not self.backend.changes(_RUN_INSERT, row):
                return False
            self.seqs.wrote(("run", run_id), 0)  # a new run: its log starts here
            started = run_started(workflow, session_id, session_version, definition)
            self.append_event("run", run_id, "run.started", started)
            return True

        return self._transact(insert, write=True)  # write: it may count runs before it inserts

    def _check_active_runs(self, tag: str, limit: int) -> None:
        self.backend.lock(f"nexus-active-runs:{tag}")  # until commit: one count-and-insert at a time
        rows = self.backend.execute(f"SELECT COUNT(*) FROM runs WHERE {_IS_ACTIVE} AND tenant_tag = ?", (*_ACTIVE, tag))
        if rows[0][0] >= limit:
            raise RateLimitedError(
                f"This tenant already has {limit} runs pending or running (NEXUS_MAX_RUNS_PER_TENANT); "
                "retry when one has finished.",
                retry_after_s=1.0,
                max_runs=limit,
            )

    def finish_run(
        self, run_id: str, status: RunStatus, outputs: dict[str, Any] | None, error: dict[str, Any] | None
    ) -> bool:
        """Record a terminal status (with its ``run.<status>`` event); False when the run was
        already finished (e.g. cancelled)."""
        now = time.time()
        row = (status.value, _dump_opt(outputs), _dump_opt(error), now, now, run_id, *_ACTIVE)

        def update() -> bool:
            if not self.backend.changes(_RUN_FINISH, row):
                return False
            self.append_event("run", run_id, *run_end_event(status, outputs, error))
            return True

        return self._transact(update)

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run and its node states (each node's last ``node.*`` event, see
        workflow/events.py: a host records a node's state as that event), or None."""
        if not storable(run_id):
            return None

        def read() -> RunRecord | None:
            self.pending.flush()  # this transaction's own node events too
            rows = self.backend.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,))
            if not rows:
                return None
            run = _run(rows[0])
            for event_type, data, created_at in self.backend.execute(
                f"SELECT type, data, created_at FROM events WHERE scope = 'run' AND scope_id = ?"
                f" AND type IN ('run.started', 'run.resumed', {NODE_EVENT_TYPES}) ORDER BY seq",
                (run_id,),
            ):
                if event_type == "run.started":
                    started = _load(data)
                    run.session_version, run.definition = started.get("session_version"), started.get("definition")
                    continue
                if event_type == "run.resumed":  # its host died (or lost the lease) while these ran
                    if _load(data).get("cause") == "store":  # no host died: a store write failed
                        continue
                    for node_id in run.running_nodes():
                        run.crashes[node_id] = run.crashes.get(node_id, 0) + 1
                    continue
                checkpoint = _checkpoint(event_type, _load(data), created_at, run.nodes)
                run.nodes[checkpoint.node_id] = checkpoint
            return run

        return self._transact(read)

    def list_runs(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        session_id: str | None = None,
        limit: int = 50,
        before: str | None = None,
        tenant_tag: str | None = None,
    ) -> list[RunRecord]:
        """Runs newest first (ids sort by time), filtered (``tenant_tag``: one tenant's,
        see security/tenancy.py); ``before`` is the paging cursor."""
        if not all_storable(workflow, session_id):
            return []  # no run has it
        where, params = [], []
        filters = (("workflow", workflow), ("status", status), ("session_id", session_id), ("tenant_tag", tenant_tag))
        for column, value in filters:
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if status is not None and status != RunStatus.COMPLETED.value:
            where.append(_NOT_COMPLETED)  # lets SQLite use the index (see schema.py)
        if before is not None:
            where.append("run_id < ?")
            params.append(before)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        sql = f"SELECT {_RUN_COLUMNS} FROM runs {clause} ORDER BY run_id DESC LIMIT ?"
        return self._transact(lambda: [_run(r) for r in self.backend.execute(sql, (*params, limit))])

    # -- sessions -----------------------------------------------------------------------
    def create_session(
        self, session_id: str, state: dict[str, Any], ttl_s: float | None, event: dict[str, Any] | None = None
    ) -> SessionRecord | None:
        """A new session at version 1 (and its ``session.created`` event, with ``event``
        added); None, and nothing written, when a session with this id exists."""
        now = time.time()
        record = SessionRecord(session_id, state, 1, now, now, now + ttl_s if ttl_s else None, ttl_s)
        with self.transaction():
            row = (session_id, _dump(state), 1, now, now, record.expires_at, ttl_s, tag_of(session_id))
            if not self.backend.changes(_SESSION_INSERT, row):
                return None
            self.append_event("session", session_id, "session.created", {"state": state, "version": 1, **(event or {})})
        return record

    def get_session(self, session_id: str) -> SessionRecord | None:
        """The session, or None when it does not exist or has expired."""
        if not storable(session_id):
            return None
        rows = self._transact(
            lambda: self.backend.execute(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = ?", (session_id,))
        )
        record = _session(rows[0]) if rows else None
        return None if record is None or record.expired(time.time()) else record

    def session_version(self, session_id: str) -> int | None:
        """The session's version, or None when it does not exist or has expired (a cheap
        check that a copy held in memory is still the stored one)."""
        if not storable(session_id):
            return None
        rows = self._transact(
            lambda: self.backend.execute("SELECT version, expires_at FROM sessions WHERE session_id = ?", (session_id,))
        )
        if not rows or (rows[0][1] is not None and rows[0][1] <= time.time()):
            return None
        return int(rows[0][0])

    def save_session(self, session_id: str, state: dict[str, Any], expected_version: int) -> SessionRecord | None:
        """Store a new state if the session is still at ``expected_version`` (with its
        ``session.updated`` event); the new record, else None (changed, deleted or expired)."""
        saved = self.save_session_states(session_id, [state], expected_version)
        return None if saved is None else saved[0]

    def save_session_states(
        self,
        session_id: str,
        states: list[dict[str, Any]],
        expected_version: int,
        turn_ids: list[str | None] | None = None,
    ) -> list[SessionRecord] | None:
        """Store several consecutive turns of a session at once: the last state is kept,
        each turn gets its version and ``session.updated`` event (with its turn id, when
        it has one). The records, else None (the session is no longer at
        ``expected_version``, deleted or expired)."""
        now = time.time()
        with self.transaction():
            rows = self.backend.execute(
                "UPDATE sessions SET state = ?, version = version + ?, updated_at = ?,"
                " expires_at = CASE WHEN ttl_s IS NULL THEN NULL ELSE ? + ttl_s END"
                " WHERE session_id = ? AND version = ? AND (expires_at IS NULL OR expires_at > ?)"
                f" RETURNING {_SESSION_COLUMNS}",
                (_dump(states[-1]), len(states), now, now, session_id, expected_version, now),
            )
            if not rows:
                return None
            last = _session(rows[0])
            saved = []
            for i, state in enumerate(states, start=1):
                version = expected_version + i
                saved.append(dataclasses.replace(last, state=state, version=version))
                event: dict[str, Any] = {"state": state, "version": version}
                if turn_ids is not None and turn_ids[i - 1] is not None:
                    event["turn"] = turn_ids[i - 1]
                self.append_event("session", session_id, "session.updated", event)
        return saved

    def applied_turns(self, current: SessionRecord, limit: int = 64) -> dict[str, SessionRecord]:
        """The last ``limit`` turns of the session ``current`` that carried a turn id: id →
        the record that turn produced (its state and version; the rest as ``current``)."""

        def read() -> dict[str, SessionRecord]:
            rows = self.backend.execute(
                "SELECT data FROM events WHERE scope = 'session' AND scope_id = ? AND type = 'session.updated'"
                " ORDER BY seq DESC LIMIT ?",
                (current.session_id, limit),
            )
            turns = (_load(data) for (data,) in rows)
            return {
                t["turn"]: dataclasses.replace(current, state=t["state"], version=t["version"])
                for t in turns
                if "turn" in t
            }

        return self._transact(read)

    def finish_run_in_session(
        self,
        run_id: str,
        status: RunStatus,
        outputs: dict[str, Any] | None,
        error: dict[str, Any] | None,
        session_id: str,
        state: dict[str, Any] | None,
        expected_version: int,
    ) -> SessionRecord | None:
        """Record a run's end, its session's new state (unless ``state`` is None) and a
        ``session.run_completed`` event in one transaction; None (and nothing written) when
        the session is no longer at ``expected_version``."""
        try:
            with self.atomic():
                self.finish_run(run_id, status, outputs, error)
                saved = self.get_session(session_id) if state is None else None
                if state is not None:
                    saved = self.save_session(session_id, state, expected_version)
                if saved is None or saved.version != expected_version + (state is not None):
                    raise _SessionMoved
                self.append_event(
                    "session", session_id, "session.run_completed", {"run_id": run_id, "status": status.value}
                )
                return saved
        except _SessionMoved:
            return None

    def delete_session(self, session_id: str) -> bool:
        """Delete a live session and its event log, leaving only the log's last event,
        ``session.deleted``; False when there was no live session."""
        if not storable(session_id):
            return False
        now = time.time()
        with self.transaction():
            rows = self.backend.execute(
                "DELETE FROM sessions WHERE session_id = ? AND (expires_at IS NULL OR expires_at > ?)"
                " RETURNING session_id",
                (session_id, now),
            )
            self._close_session_logs([row[0] for row in rows], "session.deleted")
        return bool(rows)

    def list_sessions(
        self, limit: int = 50, before: str | None = None, tenant_tag: str | None = None
    ) -> list[SessionRecord]:
        """Live sessions, newest first (ids sort by time); ``before`` is the paging cursor;
        ``tenant_tag``: one tenant's only."""
        now = time.time()
        sql = f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE (expires_at IS NULL OR expires_at > ?)"
        params: list[Any] = [now]
        if tenant_tag is not None:
            sql += " AND tenant_tag = ?"
            params.append(tenant_tag)
        if before is not None:
            sql += " AND session_id < ?"
            params.append(before)
        sql += " ORDER BY session_id DESC LIMIT ?"
        return self._transact(lambda: [_session(r) for r in self.backend.execute(sql, (*params, limit))])

    def purge_expired_sessions(
        self, owns: Callable[[str], bool] = lambda _: True, orphan_after_s: float = 60.0, limit: int = 200
    ) -> int:
        """Delete up to ``limit`` expired sessions, each with its event log but for its
        last event, ``session.expired``: those ``owns`` names, and any expired for
        ``orphan_after_s`` (whose host did not purge them). How many. Four statements and
        a multi-row INSERT of the logs' ends, whatever the number of sessions (on
        PostgreSQL each is a round trip: four a session took 105 ms a call of 200 here)."""
        now = time.time()

        def purge() -> int:
            expired = self.backend.execute(
                "SELECT session_id, expires_at FROM sessions WHERE expires_at IS NOT NULL AND expires_at <= ?"
                " ORDER BY expires_at LIMIT ?",
                (now, limit),
            )
            ids = [sid for sid, expires_at in expired if owns(sid) or expires_at <= now - orphan_after_s]
            if not ids:
                return 0
            marks = ", ".join("?" * len(ids))
            gone = self.backend.execute(
                f"DELETE FROM sessions WHERE session_id IN ({marks}) AND expires_at <= ? RETURNING session_id",
                (*ids, now),
            )
            self._close_session_logs([row[0] for row in gone], "session.expired")
            return len(gone)

        return self._transact(purge, write=True)

    def purge_session_logs(self, created_before: float, after: str = "", limit: int = 200) -> str | None:
        """Trim up to ``limit`` session event logs, in id order from the first after
        ``after``: a live session's events created before ``created_before`` go but for its
        newest (its sequence numbers go on from there); a gone session's end
        (``session.deleted``/``session.expired``) goes whole once that old. At most
        ``limit`` rows are deleted. Returns where to go on (pass it as ``after``), or None
        when no log is left. Only sessions created before the cutoff can have an event
        that old, and session ids begin with their creation time, so the walk ends there.
        Three statements a call, whatever the number of logs (on PostgreSQL each round trip
        counts: four a log took 0.7 ms a log here)."""

        def purge() -> str | None:
            ids = self._next_session_logs(after, time_prefix(created_before), limit)
            cursor: str | None = after
            budget, cuts = limit, []
            for session_id, oldest, cut in self._session_log_cuts(ids, created_before):
                if cut - oldest > budget:  # seqs are consecutive but for gaps: at most this many rows
                    cuts.append((session_id, oldest + budget))
                    break  # the rest of this log, and the logs after it, in the next call
                if cut > oldest:
                    cuts.append((session_id, cut))
                    budget -= cut - oldest
                cursor = session_id
            else:
                if len(ids) < limit:
                    cursor = None  # no log left
            self._delete_before(cuts)
            return cursor

        return self._transact(purge, write=True)

    def _next_session_logs(self, after: str, end: str, limit: int) -> list[str]:
        """The ids of up to ``limit`` session logs after ``after`` and below ``end``, in
        order: one index seek each, in one statement (a loose index scan)."""
        rows = self.backend.execute(
            "WITH RECURSIVE logs(id, n) AS ("
            " SELECT (SELECT scope_id FROM events WHERE scope = 'session' AND scope_id > ? AND scope_id < ?"
            " ORDER BY scope_id LIMIT 1), 1"
            " UNION ALL"
            " SELECT (SELECT scope_id FROM events WHERE scope = 'session' AND scope_id > logs.id AND scope_id < ?"
            " ORDER BY scope_id LIMIT 1), n + 1 FROM logs WHERE logs.id IS NOT NULL AND n < ?"
            ") SELECT id FROM logs WHERE id IS NOT NULL ORDER BY n",
            (after, end, end, limit),
        )
        return [row[0] for row in rows]

    def _session_log_cuts(self, ids: list[str], created_before: float) -> list[tuple[str, int, int]]:
        """For each log: (id, its oldest seq, the seq its events are deleted below). A live
        session keeps its events from the first one created since the cutoff, or else its
        newest; a gone one keeps none once its end is that old."""
        if not ids:
            return []
        log = "scope = 'session' AND scope_id = ids.id"
        rows = self.backend.execute(
            f"WITH ids(id) AS (VALUES {', '.join('(?)' for _ in ids)})"
            f" SELECT id, (SELECT MIN(seq) FROM events WHERE {log}), (SELECT MAX(seq) FROM events WHERE {log}),"
            f" (SELECT seq FROM events WHERE {log} AND created_at >= ? ORDER BY seq LIMIT 1),"
            " EXISTS (SELECT 1 FROM sessions WHERE session_id = ids.id) FROM ids",
            (*ids, created_before),
        )
        order = {session_id: n for n, session_id in enumerate(ids)}
        cuts = []
        for session_id, oldest, newest, first_new, live in sorted(rows, key=lambda r: order[r[0]]):
            if first_new is not None:
                cuts.append((session_id, oldest, first_new))
            else:  # every event is that old: a live session keeps its newest
                cuts.append((session_id, oldest, newest if live else newest + 1))
        return cuts

    def _delete_before(self, cuts: list[tuple[str, int]]) -> None:
        """Delete each log's events below its cut, in one statement."""
        if cuts:
            # Each term whole: SQLite searches the primary key once a term only so.
            terms = " OR ".join("(scope = 'session' AND scope_id = ? AND seq < ?)" for _ in cuts)
            self.backend.changes(f"DELETE FROM events WHERE {terms}", tuple(itertools.chain(*cuts)))

    def _close_session_logs(self, session_ids: list[str], event_type: str) -> None:
        """End gone sessions' logs with ``event_type`` after deleting every event of them:
        their states and patches go with the sessions; the last event (numbered on from
        the deleted ones) tells a subscriber why the log ended."""
        if not session_ids:
            return
        self.pending.flush()  # their events held in this transaction are counted and deleted too
        marks = ", ".join("?" * len(session_ids))
        where = f"WHERE scope = 'session' AND scope_id IN ({marks})"
        last = dict(
            self.backend.execute(f"SELECT scope_id, MAX(seq) FROM events {where} GROUP BY scope_id", tuple(session_ids))
        )
        self.backend.changes(f"DELETE FROM events {where}", tuple(session_ids))
        for session_id in session_ids:
            self.seqs.wrote(("session", session_id), int(last.get(session_id) or 0))
            self.append_event("session", session_id, event_type, {})

    # -- events ---------------------------------------------------------------------------
    def append_event(self, scope: str, scope_id: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        """Append to the ordered log of ``scope``/``scope_id`` (e.g. "session", id); the event
        with its sequence number (1, 2, ... per log). The row is written with the
        transaction's other events when it commits (see pending_events.py)."""
        event = {"seq": 0, "type": event_type, "data": data, "created_at": time.time(), scope + "_id": scope_id}
        text = _dump(data)
        if self._depth:  # in a group commit: the hot path, so no closure
            self.pending.add(event, scope, scope_id, text)
        else:
            with self.transaction():
                self.pending.add(event, scope, scope_id, text)
        self.appended.append(event)
        return event

    def last_event_seq(self, scope: str, scope_id: str) -> int:
        """The sequence number of a log's last event (0 when it has none)."""
        if not storable(scope_id):
            return 0
        return self._transact(lambda: self.pending.last_seq(scope, scope_id))

    def list_events(
        self, scope: str, scope_id: str, event_type: str | None = None, after: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Events of one log after sequence number ``after``, oldest first."""
        if not all_storable(scope_id, event_type):
            return []  # no log or event has it
        sql = "SELECT seq, type, data, created_at FROM events WHERE scope = ? AND scope_id = ? AND seq > ?"
        params: list[Any] = [scope, scope_id, after]
        if event_type is not None:
            sql += " AND type = ?"
            params.append(event_type)
        sql += " ORDER BY seq LIMIT ?"

        def read() -> list[tuple[Any, ...]]:
            self.pending.flush()  # this transaction's own events too
            return self.backend.execute(sql, (*params, limit))

        rows = self._transact(read)
        key = scope + "_id"
        return [{"seq": r[0], "type": r[1], "data": _load(r[2]), "created_at": r[3], key: scope_id} for r in rows]

    # -- idempotency --------------------------------------------------------------------
    def claim_idempotency_key(self, key: str, request_hash: str, run_id: str) -> tuple[str, str]:
        """Bind ``key`` to ``run_id`` unless it is bound already; the bound (run_id, request_hash)."""
        now = time.time()

        def claim() -> tuple[str, str]:
            self.backend.execute(
                "INSERT INTO idempotency_keys (key, request_hash, run_id, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key) DO NOTHING",
                (key, request_hash, run_id, now),
            )
            row = self.backend.execute("SELECT run_id, request_hash FROM idempotency_keys WHERE key = ?", (key,))
            return row[0][0], row[0][1]

        return self._transact(claim)

    # -- ownership ----------------------------------------------------------------------
    def renew_leases(self, owner: str, run_ids: list[str], lease_s: float) -> list[str]:
        """Extend ``owner``'s leases on ``run_ids``; the ids it still owns."""
        if not run_ids:
            return []
        marks = ", ".join("?" for _ in run_ids)
        now = time.time()
        rows = self._transact(
            lambda: self.backend.execute(
                f"UPDATE runs SET lease_expires = ?, updated_at = ? WHERE owner = ? AND run_id IN ({marks})"
                f" AND status IN (?, ?) RETURNING run_id",
                (now + lease_s, now, owner, *run_ids, *_ACTIVE),
            )
        )
        return [r[0] for r in rows]

    def adopt_orphans(self, owner: str, lease_s: float, limit: int = 100) -> list[str]:
        """Atomically take over unfinished runs whose owner's lease expired; their ids.

        The outer condition repeats the lease test: on PostgreSQL a second host's UPDATE
        waits for the first one's row locks and then checks only the outer condition
        against the new row (its subquery saw the old one), so without it both adopt."""
        now = time.time()
        expired = "(lease_expires IS NULL OR lease_expires < ?)"
        return self._transact(
            lambda: [
                r[0]
                for r in self.backend.execute(
                    "UPDATE runs SET owner = ?, lease_expires = ?, status = ?, updated_at = ? WHERE run_id IN ("
                    f" SELECT run_id FROM runs WHERE {_IS_ACTIVE} AND {expired}"
                    f" ORDER BY run_id LIMIT ?) AND status IN (?, ?) AND {expired} RETURNING run_id",
                    (owner, now + lease_s, RunStatus.RUNNING.value, now, *_ACTIVE, now, limit, *_ACTIVE, now),
                )
            ]
        )

    def purge_finished_runs(self, finished_before: float, limit: int = 200) -> int:
        """Delete up to ``limit`` runs that finished before ``finished_before`` (Unix time),
        oldest first, with their events and idempotency keys; how many. Run ids begin with
        their creation time, so the search walks the primary key only as far as runs
        created before the cutoff."""
        created_before = time_prefix(finished_before)

        def purge() -> int:
            rows = self.backend.execute(
                "SELECT run_id FROM runs WHERE run_id < ? AND status IN (?, ?, ?) AND finished_at < ?"
                " ORDER BY run_id LIMIT ?",
                (created_before, *_FINISHED, finished_before, limit),
            )
            ids = tuple(r[0] for r in rows)
            if ids:
                marks = ", ".join("?" * len(ids))
                self.backend.execute(f"DELETE FROM events WHERE scope = 'run' AND scope_id IN ({marks})", ids)
                self.backend.execute(f"DELETE FROM idempotency_keys WHERE run_id IN ({marks})", ids)
                self.backend.execute(f"DELETE FROM runs WHERE run_id IN ({marks})", ids)
            return len(ids)

        return self._transact(purge, write=True)

    def purge_global_events(self, created_before: float, limit: int = 200) -> int:
        """Delete up to ``limit`` of the oldest events of the global log (events broadcast
        without a session) created before ``created_before``; how many. The log's newest
        event is always kept, so its sequence numbers go on from there (a follower's
        cursor never sees a number twice). Walks the primary key from the oldest event
        only as far as the cutoff."""

        def purge() -> int:
            rows = self.backend.execute(
                "SELECT seq, created_at FROM events WHERE scope = 'global' AND scope_id = '' ORDER BY seq LIMIT ?",
                (limit + 1,),
            )
            # Oldest first; stop at the first newer one (hosts' clocks may differ a little).
            old = list(itertools.takewhile(lambda row: row[1] < created_before, rows[:-1]))  # the newest is kept
            if old:
                self.backend.execute(
                    "DELETE FROM events WHERE scope = 'global' AND scope_id = '' AND seq <= ?", (old[-1][0],)
                )
            return len(old)

        return self._transact(purge, write=True)

    def close(self) -> None:
        """Close the connection."""
        self.backend.close()


def _dump(value: Any) -> str:
    try:
        return pydantic_core.to_json(value).decode()
    except pydantic_core.PydanticSerializationError as exc:
        raise InvalidRequestError(f"A value cannot be stored as JSON: {exc}") from exc


def _dump_opt(value: Any) -> str | None:
    return None if value is None else _dump(value)


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _run(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        run_id=row[0],
        workflow=row[1],
        status=RunStatus(row[2]),
        inputs=_load(row[3]),
        outputs=_load(row[4]),
        error=_load(row[5]),
        owner=row[6],
        lease_expires=row[7],
        created_at=row[8],
        updated_at=row[9],
        finished_at=row[10],
        session_id=row[11],
    )


def _session(row: tuple[Any, ...]) -> SessionRecord:
    return SessionRecord(
        session_id=row[0],
        state=_load(row[1]),
        version=row[2],
        created_at=row[3],
        updated_at=row[4],
        expires_at=row[5],
        ttl_s=row[6],
    )


def _checkpoint(
    event_type: str, data: dict[str, Any], created_at: float, known: dict[str, NodeCheckpoint]
) -> NodeCheckpoint:
    """A node's state after its ``node.*`` event (``known``: the states before it, for
    when the node started)."""
    node_id, status = data["node"], NODE_STATUS_OF_EVENT[event_type]
    if status == NodeStatus.RUNNING:
        return NodeCheckpoint(node_id, status, started_at=created_at)
    before = known.get(node_id)
    started_at = before.started_at if before is not None and status != NodeStatus.SKIPPED else None
    return NodeCheckpoint(
        node_id,
        status,
        outputs=data.get("outputs"),
        error=data.get("error"),
        reason=data.get("reason"),
        started_at=started_at,
        duration_ms=data.get("duration_ms"),
    )
