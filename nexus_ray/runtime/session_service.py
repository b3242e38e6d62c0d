"""Sessions as virtual actors: addressed by id, hosted by whichever SessionHost the ring
names, one turn at a time per session, state in the store after every turn, idle sessions
dropped from memory (passivated) and re-activated from the store on their next message."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..checks import seconds, whole_number
from ..errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PreconditionFailedError,
    StoreUnavailableError,
)
from ..exits import exit_error
from ..json_form import as_stored
from ..security.tenancy import DEDICATED_SUFFIX
from ..store import AsyncStore, SessionRecord, Store
from ..workflow import RunStatus
from ..workflow.events import SESSION_TERMINAL, check_custom_event
from .batching import settle
from .errors import HostMovedError
from .event_feed import EventFeed
from .hashing import HashRing
from .host_metrics import SessionHostMetrics, check_store
from .ids import new_run_id
from .loop_watch import LoopWatch
from .merge_patch import merge_patch
from .retry_window import RETRY_WINDOW_S, RetryWindow
from .rounds import repeat

logger = logging.getLogger("nexus_ray.runtime")
DEDICATED_HOST_PREFIX = "dedicated-"  # a dedicated session's host id: this + the session id
PURGE_CHUNK = 200  # expired sessions deleted per transaction
ORPHAN_AFTER_S = 60.0  # any host purges a session expired this long (its own host did not)
CONFLICT_ATTEMPTS = 3  # a turn decided again on what the store holds, when another writer changed it
READ_CHECK_S = 1.0  # a read checks a copy in memory the store has not confirmed for this long


@dataclass
class _Turn:
    """A change waiting for its session's next commit."""

    change: Callable[[dict[str, Any]], dict[str, Any]]
    if_version: int | None
    future: asyncio.Future[dict[str, Any]]
    turn_id: str | None = None  # the same on every retry of the call that made it
    converts: bool = True  # to what the store keeps (False: a patch, converted before it merged)


@dataclass
class _Active:
    """A session in memory: its last stored record, the lock that makes turns single-file,
    and the turns queued behind the one being committed."""

    record: SessionRecord
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used: float = field(default_factory=time.monotonic)
    queued: list[_Turn] = field(default_factory=list)
    draining: asyncio.Task[None] | None = None
    applied: dict[str, SessionRecord] = field(default_factory=dict)  # turn id → its record, after a restart
    stale: bool = False  # a commit failed: it may have been stored all the same (a lost reply)
    checked: float = field(default_factory=time.monotonic)  # when the store last confirmed the record


class SessionService:
    """Hosts many sessions.

    Args:
        host_id: Name of the host (its place on the hash ring).
        store_factory: Opens the store (sessions always live in the store).
        idle_s: A session unused this long is passivated (dropped from memory).
    """

    def __init__(self, host_id: str, store_factory: Callable[[], Store], idle_s: float = 300.0) -> None:
        self.host_id = host_id
        self.feed = EventFeed("session_id", lambda event: event["type"] in SESSION_TERMINAL, erase_on_end=True)
        self.store = AsyncStore(store_factory, self.feed.publish)
        self.metrics = SessionHostMetrics(host_id)
        self.idle_s = idle_s
        self._active: dict[str, _Active] = {}
        self._maintenance: asyncio.Task[None] | None = None
        self._watch: LoopWatch | None = None
        # The pool's ring as the PoolManager last pushed it; None: this host owns every
        # session it is asked about (a fixed pool, or a dedicated host).
        self.ring: HashRing | None = None
        self.ring_version = 0
        self.retries = RetryWindow()

    def expect_retries(self, window_s: float = RETRY_WINDOW_S) -> None:
        """This host was restarted after its process died: Ray sends the calls that were in
        flight again. For ``window_s``, a session loaded from the store brings the ids of
        its recent turns, so a turn that was committed before the death is answered with
        its result instead of being applied twice."""
        self.retries.open_for(window_s)

    async def create(
        self,
        state: dict[str, Any] | None = None,
        ttl_s: float | None = None,
        *,
        session_id: str | None = None,
        channel: str | None = None,
    ) -> dict[str, Any]:
        """A new session (version 1); ``session_id`` is drawn by the caller that routes by it."""
        if state is not None and not isinstance(state, dict):
            raise InvalidRequestError("A session's state must be a JSON object.", field="state")
        state = as_stored(state or {}, "A session's state")  # in memory as the store will read it back
        seconds(ttl_s, "ttl_s", finite=True, field="ttl_s")
        _check_channel(channel, optional=True)
        event = {"channel": channel} if channel else None
        self._check_owner(session_id)
        session_id = session_id or new_run_id()
        record: SessionRecord | None = await self.store.call("create_session", session_id, state, ttl_s, event)
        if record is None:  # the id is taken: by this very call before a restart, or else a conflict
            return await self._created_before(session_id)
        self._active[record.session_id] = _Active(record)
        return record.to_dict()

    async def _deleted(self, session_id: str) -> bool:
        """Whether the session's log ends with its deletion."""
        return bool(await self.store.call("list_events", "session", session_id, "session.deleted", 0, 1))

    async def _created_before(self, session_id: str) -> dict[str, Any]:
        """The answer to a create whose session id exists: after a restart, the session that
        the same call, sent again by Ray, created before the host died."""
        taken = ConflictError(f"A session with id {session_id!r} exists already.", session_id=session_id)
        if not self.retries.is_open:
            raise taken
        try:
            return (await self._activate(session_id)).record.to_dict()
        except NotFoundError:  # it exists but has expired
            raise taken from None

    async def get(self, session_id: str) -> dict[str, Any]:
        """The session's state and version, as the store holds them."""
        return (await self._current(session_id)).record.to_dict()

    async def _current(self, session_id: str) -> _Active:
        """The live session. A copy in memory that the store has not confirmed (read,
        written) for READ_CHECK_S is checked against the store's version (one short read)
        first: a second cluster on the same store changes it through hosts of its own.
        Before, a read through one cluster returned the state from before a write or a
        delete made through the other for as long as the session stayed in memory. Not
        on every read: that cost a third of the reads per second of one busy session."""
        active = await self._activate(session_id)
        await self._refresh(session_id, active)
        return active

    async def _refresh(self, session_id: str, active: _Active) -> None:
        """Read the session again when the store's version is not the one in memory (asked
        only when the store has not confirmed it for READ_CHECK_S)."""
        if time.monotonic() - active.checked <= READ_CHECK_S:
            return
        version = await self.store.call("session_version", session_id)
        if version is None:
            raise self._gone(session_id, active)
        if version != active.record.version:
            await self._reload(session_id, active)
        active.checked = time.monotonic()

    async def patch(
        self, session_id: str, patch: dict[str, Any], if_version: int | None = None, turn_id: str | None = None
    ) -> dict[str, Any]:
        """Apply a JSON merge patch in one turn; with ``if_version``, only if still current."""
        if not isinstance(patch, dict):
            raise InvalidRequestError("A session patch must be a JSON object (RFC 7396 merge patch).")
        patch = as_stored(patch, "A session patch")  # merged into a stored state, it needs no conversion after
        return await self.turn(session_id, lambda state: merge_patch(state, patch), if_version, turn_id, converts=False)

    async def turn(
        self,
        session_id: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        if_version: int | None = None,
        turn_id: str | None = None,
        *,
        converts: bool = True,
    ) -> dict[str, Any]:
        """One turn: ``change`` maps the current state to the new one, which is stored before
        the reply and before the next turn of this session sees it. Turns that queue up
        while one commits are applied in order and committed together (one write, a version
        and event each), so one busy session is not limited to one commit per turn.
        ``turn_id`` (stored in the turn's event) makes a retry of the same call after a
        restart return the first one's result (see expect_retries). The new state is kept
        as the store will read it back; ``converts=False`` when it is already (a patch)."""
        if if_version is not None:
            whole_number(if_version, "if_version", low=1, hint=" (a session version)", field="if_version")
        active = await self._activate(session_id)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        active.queued.append(_Turn(change, if_version, future, turn_id, converts))
        if active.draining is None:
            active.draining = asyncio.ensure_future(self._drain(session_id, active))
        return await future

    async def _drain(self, session_id: str, active: _Active) -> None:
        try:
            async with active.lock:
                while active.queued:
                    turns, active.queued = active.queued, []
                    await self._commit_turns(session_id, active, turns)
        except BaseException as exc:  # never leave a caller waiting
            for turn in active.queued:
                settle(turn.future, error=exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
            active.queued = []
            raise
        finally:
            active.draining = None

    async def _commit_turns(self, session_id: str, active: _Active, turns: list[_Turn]) -> None:
        """Apply ``turns`` in order and store them in one write. The copy in memory is
        only this host's: another writer of the store (a second cluster on it) may have
        changed the session. So a write the store refuses as stale, and a 412 decided
        on the copy, are decided again on the session read back from the store."""
        for attempt in range(CONFLICT_ATTEMPTS):
            if active.stale or attempt:
                try:
                    await self._reload(session_id, active)
                except Exception as exc:
                    _settle_all(turns, exc)
                    return
            accepted, states, refused = _apply_turns(session_id, active, turns)
            if not attempt and any(isinstance(error, PreconditionFailedError) for _, error in refused):
                try:
                    if await self.store.call("session_version", session_id) != active.record.version:
                        continue  # the copy was stale: decide every turn again on the stored one
                except Exception as exc:
                    active.stale = isinstance(exc, StoreUnavailableError)
                    _settle_all(turns, exc)
                    return
            for turn, error in refused:
                settle(turn.future, error=error)
            turns = accepted
            if not accepted:
                return
            try:
                saved = await self.store.call(
                    "save_session_states", session_id, states, active.record.version, [t.turn_id for t in accepted]
                )
            except Exception as exc:
                active.stale = isinstance(exc, StoreUnavailableError)
                _settle_all(accepted, exc)
                return
            if saved is not None:
                active.record, active.last_used = saved[-1], time.monotonic()
                active.checked = active.last_used
                for turn, record in zip(accepted, saved, strict=True):
                    settle(turn.future, result=record.to_dict())
                return
        _settle_all(turns, _changed_elsewhere(session_id))

    async def _reload(self, session_id: str, active: _Active) -> None:
        """Read the session again after a failed commit (which the store may hold)."""
        record = await self.store.call("get_session", session_id)
        if record is None:
            raise self._gone(session_id, active)
        active.record, active.stale, active.checked = record, False, time.monotonic()

    def _gone(self, session_id: str, active: _Active) -> NotFoundError:
        """Forget ``active``, whose session the store no longer has; the error to raise."""
        if self._active.get(session_id) is active:
            del self._active[session_id]
        return _not_found(session_id)

    async def complete_run(
        self,
        session_id: str,
        run_id: str,
        status: RunStatus,
        outputs: dict[str, Any],
        error: dict[str, Any] | None,
        patches: list[dict[str, Any]],
        read_version: int | None = None,
    ) -> tuple[RunStatus, dict[str, Any] | None]:
        """One turn: apply a finished run's patches (none: the state stays as it is) and
        record its end, with a ``session.run_completed`` event, in one transaction. If the
        session is gone, or changed since the run read it at ``read_version`` (another
        run's patches or a PATCH, which the patches computed from the old state would
        overwrite), nothing is applied and a run with patches fails, saying why; the
        (status, error) the run ends with."""
        for _ in range(3):
            try:
                active = await self._activate(session_id)
            except NotFoundError:
                if not patches:
                    await self.store.call("finish_run", run_id, status, outputs, error)
                    return status, error
                gone = {
                    "node": "",
                    "type": "SessionNotFoundError",
                    "message": f"session {session_id!r} no longer exists; its update was not applied",
                }
                await self.store.call("finish_run", run_id, RunStatus.FAILED, outputs, gone)
                return RunStatus.FAILED, gone
            async with active.lock:
                if active.stale:
                    await self._reload(session_id, active)
                current = active.record.version
                if patches and read_version is not None and current != read_version:
                    status, error, patches = RunStatus.FAILED, _changed_meanwhile(session_id, read_version, current), []
                state = functools.reduce(merge_patch, patches, active.record.state) if patches else None
                try:
                    saved = await self.store.call(
                        "finish_run_in_session", run_id, status, outputs, error, session_id, state, current
                    )
                except Exception as exc:
                    active.stale = isinstance(exc, StoreUnavailableError)
                    raise
                if saved is not None:
                    active.record, active.last_used = saved, time.monotonic()
                    active.checked = active.last_used
                    return status, error
                self._active.pop(session_id, None)  # changed on another host: reload and reapply
        raise ConflictError(f"Session {session_id!r} kept changing elsewhere; run {run_id} was not finished.")

    async def sync(self, session_id: str, channel: str) -> dict[str, Any]:
        """The current session, recording that ``channel`` synced it (a ``session.synced`` event)."""
        _check_channel(channel)
        async with self._locked(session_id) as active:
            await self._refresh(session_id, active)
            await self.store.call("append_event", "session", session_id, "session.synced", {"channel": channel})
            return active.record.to_dict()

    async def emit(self, session_id: str | None, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        """Append a custom event to a session's log, in order with its turns (no session: the
        global log)."""
        data = check_custom_event(event_type, data)
        if session_id is None:
            return await self.store.call("append_event", "global", "", event_type, data)  # type: ignore[no-any-return]
        async with self._locked(session_id):
            return await self.store.call("append_event", "session", session_id, event_type, data)  # type: ignore[no-any-return]

    @contextlib.asynccontextmanager
    async def _locked(self, session_id: str) -> AsyncIterator[_Active]:
        """The live session, its lock held (no turn runs meanwhile). One deleted (or moved)
        while this waited for the lock is looked up again, so it raises NotFoundError (or
        HostMovedError) instead of getting an event after its end."""
        while True:
            active = await self._activate(session_id)
            async with active.lock:
                if self._active.get(session_id) is active:
                    yield active
                    return

    async def events(
        self, session_id: str | None, event_type: str | None = None, after: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        """A session's events (or the global log's) after sequence number ``after``, oldest first."""
        scope, scope_id = ("session", session_id) if session_id is not None else ("global", "")
        return await self.store.call("list_events", scope, scope_id, event_type, after, limit)  # type: ignore[no-any-return]

    async def wait_events(self, session_id: str, after: int, timeout_s: float) -> tuple[list[dict[str, Any]], bool]:
        """The session's events after ``after`` (waiting up to ``timeout_s`` for new ones),
        and whether the session is gone. In a cluster every event of a session is written
        by its host, so the waits are served from memory. A wait that ends with nothing
        new also looks at the store once: a second cluster on the same store writes the
        session's events through hosts of its own (before, their events never reached
        this cluster's followers)."""
        self._check_owner(session_id)
        if not self.feed.is_tracked(session_id):
            last = await self.store.call("last_event_seq", "session", session_id)
            if last == 0:
                raise _not_found(session_id)
            self.feed.track(session_id, last)
        batch = await self.feed.wait(session_id, after, timeout_s, self._stored_events)
        assert batch is not None  # tracked above
        if not batch.events and not batch.closed:
            stored = await self._stored_events(session_id, after)
            self.feed.publish(stored)
            batch = self.feed.stored_batch(stored)
        self.metrics.delivered.inc(len(batch.events))
        return batch.to_wire()

    async def _stored_events(self, session_id: str, after: int) -> list[dict[str, Any]]:
        return await self.store.call("list_events", "session", session_id, None, after, 1000)  # type: ignore[no-any-return]

    async def delete(self, session_id: str) -> None:
        """Delete the session (404 when there is none, except for a delete that Ray sends
        again after a restart, which deleted it before the host died)."""
        try:
            active = await self._activate(session_id)
        except NotFoundError:
            if self.retries.is_open and await self._deleted(session_id):
                return
            raise
        async with active.lock:
            self._active.pop(session_id, None)
            if not await self.store.call("delete_session", session_id):
                raise _not_found(session_id)

    async def list(
        self, limit: int = 50, before: str | None = None, tenant_tag: str | None = None
    ) -> list[dict[str, Any]]:
        """Live sessions, newest first (``tenant_tag``: one tenant's)."""
        return [r.to_dict() for r in await self.store.call("list_sessions", limit, before, tenant_tag)]

    def _owns(self, session_id: str) -> bool:
        """Whether this host serves ``session_id`` (and so its followers: it purges it)."""
        if session_id.endswith(DEDICATED_SUFFIX) or self.host_id.startswith(DEDICATED_HOST_PREFIX):
            return self.host_id == DEDICATED_HOST_PREFIX + session_id
        return self._ring_gives_me(session_id)

    def _ring_gives_me(self, session_id: str) -> bool:
        """Whether the pool's ring places ``session_id`` here (no ring: everything is)."""
        return self.ring is None or self.ring.member_for(session_id) == self.host_id

    def _check_owner(self, session_id: str | None) -> None:
        if session_id is not None and not self._ring_gives_me(session_id):
            assert self.ring is not None  # no ring gives every session to this host
            raise HostMovedError(
                f"Session {session_id!r} is now hosted by {self.ring.member_for(session_id)}; ask it there.",
                session_id=session_id,
            )

    async def adopt_ring(self, version: int, members: Sequence[str]) -> int:
        """Take the pool's new ring (older versions are ignored): drop the sessions it gives
        to other hosts once their turn in flight is committed, so their new host reads the
        latest state; from now on calls for them get HostMovedError. How many moved away."""
        if version <= self.ring_version:
            return 0
        if self.ring is not None:  # sessions move: a call whose old host died comes here again
            self.expect_retries()
        self.ring, self.ring_version = HashRing(members), version
        moved = [(sid, active) for sid, active in self._active.items() if not self._ring_gives_me(sid)]
        for session_id, _ in moved:
            del self._active[session_id]
        for _, active in moved:  # no new turn can reach them now; the last one commits
            if active.draining is not None:
                await asyncio.wait([active.draining])
            async with active.lock:
                pass
        self.feed.forget_unless(self._ring_gives_me)
        return len(moved)

    async def _activate(self, session_id: str) -> _Active:
        self._check_owner(session_id)
        active = self._active.get(session_id)
        now = time.time()
        if active is not None and not active.record.expired(now):
            if active.stale and not active.lock.locked():  # a read after a failed commit sees what it stored
                await self._reload(session_id, active)
            active.last_used = time.monotonic()
            return active
        record = await self.store.call("get_session", session_id)
        if record is None:
            self._active.pop(session_id, None)
            raise _not_found(session_id)
        applied = {}
        if self.retries.is_open:
            applied = await self.store.call("applied_turns", record)
        return self._active.setdefault(session_id, _Active(record, applied=applied))

    # -- housekeeping -------------------------------------------------------------------
    def start_maintenance(self, every_s: float = 10.0) -> None:
        """Passivate idle sessions and purge expired ones every ``every_s``; watch the
        loop for code that blocks it (a slow function turn) (call once)."""
        if self._maintenance is None:
            rounds = repeat(f"session maintenance on {self.host_id}", self.maintain_once, every_s)
            self._maintenance = asyncio.get_event_loop().create_task(rounds)
            self._watch = LoopWatch(asyncio.get_event_loop(), self.host_id)
            self._watch.start()

    async def maintain_once(self) -> None:
        """One round: passivate idle sessions, purge expired ones."""
        self.passivate_idle()
        await self.purge_expired()

    async def purge_expired(self) -> int:
        """Delete the expired sessions this host serves (and orphans, see the store), each
        with its log but for its end, ``session.expired``, which ends their followers'
        streams here; how many."""
        return await self.store.drain("purge_expired_sessions", self._owns, ORPHAN_AFTER_S, chunk=PURGE_CHUNK)

    def passivate_idle(self, idle_s: float | None = None) -> int:
        """Drop sessions unused for ``idle_s`` (default: the host's) from memory; how many."""
        cutoff = time.monotonic() - (self.idle_s if idle_s is None else idle_s)
        idle = [
            sid
            for sid, a in self._active.items()
            if a.last_used <= cutoff and not a.lock.locked() and a.draining is None
        ]
        for session_id in idle:
            del self._active[session_id]
        self.feed.drop_idle(self.idle_s)
        return len(idle)

    async def health(self) -> dict[str, Any]:
        """This host and its store: ``{"host_id", "store": "ok" | what is wrong}``."""
        return {"host_id": self.host_id, "store": await check_store(self.store)}

    def metrics_text(self) -> str:
        """This host's metrics in Prometheus text format."""
        return self.metrics.text(len(self._active))

    def info(self) -> dict[str, Any]:
        """Host id and sessions in memory."""
        return {"host_id": self.host_id, "active_sessions": len(self._active)}

    def close(self) -> None:
        """Stop maintenance and the loop watch, and close the store."""
        if self._maintenance is not None:
            self._maintenance.cancel()
        if self._watch is not None:
            self._watch.stop()
        self.store.close()


def _apply_turns(
    session_id: str, active: _Active, turns: list[_Turn]
) -> tuple[list[_Turn], list[dict[str, Any]], list[tuple[_Turn, Exception]]]:
    """``turns`` applied in order to the session's state: the accepted ones with the state
    after each, and the refused ones with their own mistake (the others go on). A retry
    of a turn committed before this host restarted is answered here."""
    accepted: list[_Turn] = []
    states: list[dict[str, Any]] = []
    refused: list[tuple[_Turn, Exception]] = []
    state, version = active.record.state, active.record.version
    for turn in turns:
        done = active.applied.get(turn.turn_id) if turn.turn_id is not None else None
        if done is not None:
            settle(turn.future, result=done.to_dict())
            continue
        try:
            state = _apply(session_id, turn, state, version)
        except Exception as exc:
            refused.append((turn, exc))
            continue
        except SystemExit as exc:  # raised on, it would stop the host's loop (see nexus_ray.exits)
            refused.append((turn, exit_error(exc, f"a turn of session {session_id!r}")))
            continue
        accepted.append(turn)
        states.append(state)
        version += 1
    return accepted, states, refused


def _settle_all(turns: list[_Turn], error: Exception) -> None:
    for turn in turns:
        settle(turn.future, error=error)


def _apply(session_id: str, turn: _Turn, state: dict[str, Any], version: int) -> dict[str, Any]:
    if turn.if_version is not None and turn.if_version != version:
        raise PreconditionFailedError(
            f"Session {session_id!r} is at version {version}, not {turn.if_version}; "
            "GET it and retry with the current version.",
            session_id=session_id,
            current_version=version,
        )
    new_state = turn.change(state)
    if not isinstance(new_state, dict):
        raise InvalidRequestError(
            f"A session update must produce a JSON object, got {type(new_state).__name__}.", session_id=session_id
        )
    if not turn.converts:
        return new_state
    # Kept in memory as the store will read it back after passivation or on another host.
    return as_stored(new_state, f"The new state of session {session_id!r}")


def _changed_elsewhere(session_id: str) -> ConflictError:
    return ConflictError(f"Session {session_id!r} changed elsewhere meanwhile; retry.", session_id=session_id)


def _not_found(session_id: str) -> NotFoundError:
    return NotFoundError(f"No session with id {session_id!r} (it may have expired).", session_id=session_id)


def _check_channel(channel: object, optional: bool = False) -> None:
    """A channel is named by a short string ("api", "cli", "rest", ...)."""
    if channel is None and optional:
        return
    if not isinstance(channel, str) or not 0 < len(channel) <= 100:
        raise InvalidRequestError(f"A channel is a name of 1-100 characters, got {channel!r}.", field="channel")


def _changed_meanwhile(session_id: str, read: int, current: int) -> dict[str, Any]:
    """The error of a run whose session changed between its read and its write-back."""
    return {
        "node": "",
        "type": "SessionConflictError",
        "message": f"session {session_id!r} changed while the run ran (version {read} when it read the state, "
        f"{current} now); its update was not applied: run it again",
    }
