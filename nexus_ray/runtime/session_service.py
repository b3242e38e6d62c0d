"""Sessions as virtual actors: addressed by id, hosted by whichever SessionHost the ring
names, one turn at a time per session, state in the store after every turn, idle sessions
dropped from memory (passivated) and re-activated from the store on their next message."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConflictError, InvalidRequestError, NotFoundError, PreconditionFailedError
from ..store import AsyncStore, SessionRecord, Store
from ..workflow import RunStatus
from .ids import new_run_id
from .merge_patch import merge_patch

logger = logging.getLogger("nexus_ray.runtime")


@dataclass
class _Active:
    """A session in memory: its last stored record and the lock that makes turns single-file."""

    record: SessionRecord
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_used: float = field(default_factory=time.monotonic)


class SessionService:
    """Hosts many sessions.

    Args:
        host_id: Name of the host (its place on the hash ring).
        store_factory: Opens the store (sessions always live in the store).
        idle_s: A session unused this long is passivated (dropped from memory).
    """

    def __init__(self, host_id: str, store_factory: Callable[[], Store], idle_s: float = 300.0) -> None:
        self.host_id = host_id
        self.store = AsyncStore(store_factory)
        self.idle_s = idle_s
        self._active: dict[str, _Active] = {}
        self._maintenance: asyncio.Task[None] | None = None

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
        if ttl_s is not None and ttl_s <= 0:
            raise InvalidRequestError(f"ttl_s must be positive, got {ttl_s}.", field="ttl_s")
        event = {"channel": channel} if channel else None
        record: SessionRecord = await self.store.call(
            "create_session", session_id or new_run_id(), state or {}, ttl_s, event
        )
        self._active[record.session_id] = _Active(record)
        return record.to_dict()

    async def get(self, session_id: str) -> dict[str, Any]:
        """The session's state and version."""
        return (await self._activate(session_id)).record.to_dict()

    async def patch(self, session_id: str, patch: dict[str, Any], if_version: int | None = None) -> dict[str, Any]:
        """Apply a JSON merge patch in one turn; with ``if_version``, only if still current."""
        if not isinstance(patch, dict):
            raise InvalidRequestError("A session patch must be a JSON object (RFC 7396 merge patch).")
        return await self.turn(session_id, lambda state: merge_patch(state, patch), if_version)

    async def turn(
        self,
        session_id: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        if_version: int | None = None,
    ) -> dict[str, Any]:
        """One turn: ``change`` maps the current state to the new one, which is stored before
        the next turn of this session starts."""
        active = await self._activate(session_id)
        async with active.lock:
            current = active.record
            if if_version is not None and if_version != current.version:
                raise PreconditionFailedError(
                    f"Session {session_id!r} is at version {current.version}, not {if_version}; "
                    "GET it and retry with the current version.",
                    session_id=session_id,
                    current_version=current.version,
                )
            saved = await self.store.call("save_session", session_id, change(current.state), current.version)
            if saved is None:
                self._active.pop(session_id, None)
                if await self.store.call("get_session", session_id) is None:
                    raise _not_found(session_id)
                raise ConflictError(
                    f"Session {session_id!r} changed elsewhere meanwhile; retry.", session_id=session_id
                )
            active.record, active.last_used = saved, time.monotonic()
            return saved.to_dict()  # type: ignore[no-any-return]

    async def complete_run(
        self,
        session_id: str,
        run_id: str,
        status: RunStatus,
        outputs: dict[str, Any],
        error: dict[str, Any] | None,
        patches: list[dict[str, Any]],
    ) -> tuple[RunStatus, dict[str, Any] | None]:
        """One turn: apply a finished run's patches and record its end in one transaction.
        If the session is gone, nothing is applied and the run fails, saying why; the
        (status, error) the run ends with."""
        for _ in range(3):
            try:
                active = await self._activate(session_id)
            except NotFoundError:
                gone = {
                    "node": "",
                    "type": "SessionNotFoundError",
                    "message": f"session {session_id!r} no longer exists; its update was not applied",
                }
                await self.store.call("finish_run", run_id, RunStatus.FAILED, outputs, gone)
                return RunStatus.FAILED, gone
            async with active.lock:
                state = functools.reduce(merge_patch, patches, active.record.state)
                saved = await self.store.call(
                    "finish_run_in_session", run_id, status, outputs, error, session_id, state, active.record.version
                )
                if saved is not None:
                    active.record, active.last_used = saved, time.monotonic()
                    return status, error
                self._active.pop(session_id, None)  # changed on another host: reload and reapply
        raise ConflictError(f"Session {session_id!r} kept changing elsewhere; run {run_id} was not finished.")

    async def sync(self, session_id: str, channel: str) -> dict[str, Any]:
        """The current session, recording that ``channel`` synced it (a ``session.synced`` event)."""
        active = await self._activate(session_id)
        async with active.lock:
            await self.store.call("append_event", "session", session_id, "session.synced", {"channel": channel})
            return active.record.to_dict()

    async def emit(self, session_id: str | None, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        """Append a custom event to a session's log, in order with its turns (no session: the
        global log)."""
        _check_event(event_type, data)
        if session_id is None:
            return await self.store.call("append_event", "global", "", event_type, data)  # type: ignore[no-any-return]
        active = await self._activate(session_id)
        async with active.lock:
            return await self.store.call("append_event", "session", session_id, event_type, data)  # type: ignore[no-any-return]

    async def events(
        self, session_id: str | None, event_type: str | None = None, after: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        """A session's events (or the global log's) after sequence number ``after``, oldest first."""
        scope, scope_id = ("session", session_id) if session_id is not None else ("global", "")
        return await self.store.call("list_events", scope, scope_id, event_type, after, limit)  # type: ignore[no-any-return]

    async def delete(self, session_id: str) -> None:
        """Delete the session (404 when there is none)."""
        active = await self._activate(session_id)
        async with active.lock:
            self._active.pop(session_id, None)
            if not await self.store.call("delete_session", session_id):
                raise _not_found(session_id)

    async def list(self, limit: int = 50, before: str | None = None) -> list[dict[str, Any]]:
        """Live sessions, newest first."""
        return [r.to_dict() for r in await self.store.call("list_sessions", limit, before)]

    async def _activate(self, session_id: str) -> _Active:
        active = self._active.get(session_id)
        now = time.time()
        if active is not None and not active.record.expired(now):
            active.last_used = time.monotonic()
            return active
        record = await self.store.call("get_session", session_id)
        if record is None:
            self._active.pop(session_id, None)
            raise _not_found(session_id)
        return self._active.setdefault(session_id, _Active(record))

    # -- housekeeping -------------------------------------------------------------------
    def start_maintenance(self, every_s: float = 10.0) -> None:
        """Passivate idle sessions and purge expired ones every ``every_s`` (call once)."""
        if self._maintenance is None:
            self._maintenance = asyncio.get_event_loop().create_task(self._maintain(every_s))

    async def _maintain(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            try:
                self.passivate_idle()
                await self.store.call("purge_expired_sessions")
            except Exception:
                logger.exception("session maintenance on %s failed; retrying", self.host_id)

    def passivate_idle(self, idle_s: float | None = None) -> int:
        """Drop sessions unused for ``idle_s`` (default: the host's) from memory; how many."""
        cutoff = time.monotonic() - (self.idle_s if idle_s is None else idle_s)
        idle = [sid for sid, a in self._active.items() if a.last_used <= cutoff and not a.lock.locked()]
        for session_id in idle:
            del self._active[session_id]
        return len(idle)

    def info(self) -> dict[str, Any]:
        """Host id and sessions in memory."""
        return {"host_id": self.host_id, "active_sessions": len(self._active)}

    def close(self) -> None:
        """Stop maintenance and close the store."""
        if self._maintenance is not None:
            self._maintenance.cancel()
        self.store.close()


RESERVED_EVENT_PREFIXES = ("session.", "run.", "node.")


def _check_event(event_type: Any, data: Any) -> None:
    if not isinstance(event_type, str) or not 0 < len(event_type) <= 200:
        raise InvalidRequestError(f"An event type must be a string of 1-200 characters, got {event_type!r}.")
    if event_type.startswith(RESERVED_EVENT_PREFIXES):
        raise InvalidRequestError(
            f"Event type {event_type!r} uses a reserved prefix {RESERVED_EVENT_PREFIXES}; choose another name.",
            event_type=event_type,
        )
    if not isinstance(data, dict):
        raise InvalidRequestError("Event data must be a JSON object.", event_type=event_type)


def _not_found(session_id: str) -> NotFoundError:
    return NotFoundError(f"No session with id {session_id!r} (it may have expired).", session_id=session_id)
