"""A picklable client that sends each session call to the SessionHost owning the id."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayActorError, RayTaskError

from ..errors import NotFoundError, RateLimitedError
from ..security.principal import DEFAULT_TENANT
from ..security.tenancy import DEDICATED_SUFFIX, known_session, scoped
from .batching import BatcherCache, ask_each
from .dedicated_slots import ALL_LIMIT, TENANT_LIMIT, host_name
from .errors import HostMovedError, submit, translate_ray_error
from .ids import new_run_id
from .membership import HOST_LOST_ATTEMPTS, FollowsMembers, MemberView, lost_host_backoff
from .named_actors import NAMESPACE
from .session_service import DEDICATED_HOST_PREFIX

MOVE_ATTEMPTS = 8  # a resize moves a session within milliseconds; 8 tries wait up to ~1.6 s
DEDICATED_RETRY_AFTER_S = 10.0  # what a caller refused a dedicated session's actor is told
# Calls that start a dedicated session's actor even past NEXUS_MAX_DEDICATED_SESSIONS: a
# delete frees what it takes, and the end of a run in the session cannot be put off (its
# nodes are done; refused, the run stayed `running` until another host adopted it).
BEYOND_LIMIT = frozenset({"delete", "complete_run"})
# Handles to dedicated hosts one process keeps, the least recently used dropped first (with
# their batchers): one was kept for every dedicated session this process ever called. At
# least twice NEXUS_MAX_DEDICATED_SESSIONS, so those dropped are most likely of actors that
# stopped already (Ray stops a live one whose creator drops its handle).
DEDICATED_HANDLES_KEPT = 256


def _backoff(exc: Exception, attempt: int) -> float:
    """The wait before the next attempt: a host that died may take the PoolManager's
    restart to replace (see membership.py); a moved session is found at once."""
    return lost_host_backoff(attempt) if isinstance(exc, RayActorError) else min(0.01 * 2**attempt, 0.5)


# Quick, non-blocking SessionHost methods that are batched (long polls are sent alone).
SESSION_BATCHED = frozenset({"create", "get", "patch", "turn", "sync", "emit", "delete", "complete_run"})
# Calls that change a session's state carry a turn id, the same on every retry of the call
# (Ray's after a host died, or ours), so a host applies each at most once.
TURN_METHODS = frozenset({"patch", "turn"})


def with_turn_id(method: str, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``args`` of ``method``, with a new turn id last when it changes a session's state."""
    return (*args, secrets.token_hex(8)) if method in TURN_METHODS else args


def _check_id(method: str, session_id: str) -> None:
    """404 for an id no session can have ("": the global event log; "list" is routed by
    its cursor, checked as one; "create" by a new id)."""
    if session_id and method not in ("create", "list"):
        known_session(session_id)


class SessionsClient(FollowsMembers):
    """Routes session calls by consistent hashing of the session id (one hop). A dedicated
    session (id ending in ``-d``) has its own SessionHost actor, named after the session
    and created on first use (again after a restart: its state is in the store).

    Args:
        members: The shared SessionHost pool (a MemberView follows it as it resizes).
        prefix: Actor name prefix of this app (dedicated hosts are ``prefix-session-<id>``).
        settings: Settings handed to dedicated hosts.
        dedicated_by_default: Create every session dedicated (``session_isolation``).
    """

    def __init__(
        self,
        members: dict[str, ActorHandle] | MemberView,
        prefix: str = "",
        settings: dict[str, Any] | None = None,
        dedicated_by_default: bool = False,
    ) -> None:
        self.members = members if isinstance(members, MemberView) else MemberView(members, kind="session")
        self.prefix, self.settings, self.dedicated_by_default = prefix, settings or {}, dedicated_by_default
        self._dedicated: OrderedDict[str, ActorHandle] = OrderedDict()
        self.batchers = BatcherCache(max_inflight=1, max_batch=256, wait_s=0.05)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_dedicated": OrderedDict()}  # handles are looked up again where used

    def _host_key(self, session_id: str) -> str:
        return session_id if session_id.endswith(DEDICATED_SUFFIX) else self.ring.member_for(session_id)

    def host_for(self, session_id: str) -> ActorHandle:
        """The actor that hosts ``session_id``."""
        if not session_id.endswith(DEDICATED_SUFFIX):
            return self.hosts[self.ring.member_for(session_id)]
        handle = self._dedicated.get(session_id)
        if handle is not None:
            self._dedicated.move_to_end(session_id)
            return handle
        from .session_host import SessionHost

        handle = self._dedicated[session_id] = SessionHost.options(  # type: ignore[attr-defined]
            name=host_name(self.prefix, session_id), namespace=NAMESPACE, get_if_exists=True
        ).remote(DEDICATED_HOST_PREFIX + session_id, self.settings)
        while len(self._dedicated) > max(DEDICATED_HANDLES_KEPT, 2 * self.settings.get("max_dedicated_sessions", 0)):
            self._forget(next(iter(self._dedicated)))
        return handle

    def _forget(self, session_id: str) -> None:
        """Drop this process's handle to a dedicated session's host, and its batchers. (Its
        actor, if up and created by this process, is stopped by Ray: the session is
        passivated, and the next call from any process starts it again.)"""
        self._dedicated.pop(session_id, None)
        self.batchers.forget(session_id)

    async def call(self, method: str, session_id: str, *args: Any) -> Any:
        """``method`` on the host of ``session_id``; quick methods are batched with
        concurrent calls to the same host (see batching.py), others sent alone."""
        _check_id(method, session_id)
        self.members.follow()
        args = with_turn_id(method, args)
        for attempt in range(1, HOST_LOST_ATTEMPTS + 1):
            try:
                if (admission := self._admission(method, session_id)) is not None:
                    self._check_admitted(session_id, await admission)
                host = self.host_for(session_id)
                if method in SESSION_BATCHED:
                    return await self.batchers.get(self._host_key(session_id), host).call(method, *args)
                return await submit(host, method, args)
            except (RayTaskError, RayActorError, NotFoundError, HostMovedError) as exc:
                if self._moved(session_id, exc, attempt):
                    await asyncio.sleep(_backoff(exc, attempt))
                    await self.members.refresh()
                    continue
                self._on_error(session_id, exc, attempt)
        raise AssertionError("unreachable")

    def call_blocking(self, method: str, session_id: str, *args: Any) -> Any:
        """The same from synchronous code."""
        _check_id(method, session_id)
        self.members.refresh_blocking()
        args = with_turn_id(method, args)
        for attempt in range(1, HOST_LOST_ATTEMPTS + 1):
            try:
                if (admission := self._admission(method, session_id)) is not None:
                    self._check_admitted(session_id, ray.get(admission))
                return ray.get(submit(self.host_for(session_id), method, args))
            except (RayTaskError, RayActorError, NotFoundError, HostMovedError) as exc:
                if self._moved(session_id, exc, attempt):
                    time.sleep(_backoff(exc, attempt))
                    self.members.refresh_blocking(force=True)
                    continue
                self._on_error(session_id, exc, attempt)
        raise AssertionError("unreachable")

    def _admission(self, method: str, session_id: str) -> ray.ObjectRef | None:
        """The PoolManager's answer (to await or get) whether a call of ``method`` may start
        a dedicated session's actor, asked when this process has no handle to one (the
        actor may be up already: the manager knows); None when there is nothing to ask."""
        manager = self.members.manager
        if manager is None or not session_id.endswith(DEDICATED_SUFFIX) or session_id in self._dedicated:
            return None
        return manager.admit_dedicated.remote(session_id, method in BEYOND_LIMIT)  # type: ignore[no-any-return]

    def _check_admitted(self, session_id: str, refusal: str | None) -> None:
        """Raise the 429 for a dedicated session refused its actor (``refusal``: the
        setting whose limit it reached, see dedicated_slots.py)."""
        if refusal is None:
            return
        if refusal == TENANT_LIMIT:
            limit = self.settings.get("max_dedicated_sessions_per_tenant")
            held = f"{limit} dedicated sessions of its tenant have one already ({TENANT_LIMIT})"
        else:
            limit = self.settings.get("max_dedicated_sessions")
            held = f"{limit} dedicated sessions have one already ({ALL_LIMIT})"
        raise RateLimitedError(
            f"Dedicated session {session_id!r} cannot start its Ray actor: {held}, each a worker process. One "
            "frees its actor when it is deleted or has been unused for NEXUS_SESSION_IDLE_S; a shared session "
            "has no such limit.",
            retry_after_s=DEDICATED_RETRY_AFTER_S,
            limit=limit,
            session_id=session_id,
        )

    def _moved(self, session_id: str, exc: Exception, attempt: int) -> bool:
        """Whether to ask for the pool's members and try again: the host no longer owns the
        session (the pool was resized, up to MOVE_ATTEMPTS), or it was removed from the pool
        or died (up to HOST_LOST_ATTEMPTS)."""
        attempts = HOST_LOST_ATTEMPTS if isinstance(exc, RayActorError) else MOVE_ATTEMPTS
        if attempt >= attempts or session_id.endswith(DEDICATED_SUFFIX) or self.members.manager is None:
            return False
        moved = exc if isinstance(exc, HostMovedError) else getattr(exc, "cause", None)
        return isinstance(exc, RayActorError) or isinstance(moved, HostMovedError)

    def _on_error(self, session_id: str, exc: Exception, attempt: int) -> None:
        """Return to retry once, else raise the translated error. A dedicated session's
        actor may have been stopped by another process (session deleted): drop the stale
        handle and retry; a dedicated host whose session is gone is stopped."""
        dedicated = session_id.endswith(DEDICATED_SUFFIX)
        if dedicated and isinstance(exc, RayActorError) and attempt == 1:
            self._forget(session_id)
            return
        # a NotFoundError from an actor is also a RayTaskError (Ray's dual class): unwrap it
        error = translate_ray_error(exc) if isinstance(exc, RayTaskError | RayActorError) else exc
        if dedicated and isinstance(error, NotFoundError):
            self.release(session_id)
        if error is exc:
            raise error
        raise error from exc

    def new_session_id(self, dedicated: bool | None, tenant: str = DEFAULT_TENANT) -> str:
        """A new id of ``tenant`` (see security/tenancy.py); dedicated ones end in ``-d``."""
        wanted = self.dedicated_by_default if dedicated is None else dedicated
        return scoped(new_run_id(), tenant) + (DEDICATED_SUFFIX if wanted else "")

    async def create(
        self,
        state: dict[str, Any] | None,
        ttl_s: float | None,
        dedicated: bool | None = None,
        tenant: str = DEFAULT_TENANT,
        channel: str | None = None,
    ) -> dict[str, Any]:
        """A new session of ``tenant`` on the host its new id belongs to (``channel`` is
        recorded in its ``session.created`` event)."""
        session_id = self.new_session_id(dedicated, tenant)
        return await self.call("create", session_id, session_id, state, ttl_s, channel)  # type: ignore[no-any-return]

    def create_blocking(
        self,
        state: dict[str, Any] | None,
        ttl_s: float | None,
        channel: str | None = None,
        dedicated: bool | None = None,
    ) -> dict[str, Any]:
        """The same from synchronous code."""
        session_id = self.new_session_id(dedicated)
        return self.call_blocking("create", session_id, session_id, state, ttl_s, channel)  # type: ignore[no-any-return]

    def release(self, session_id: str) -> None:
        """Stop a deleted dedicated session's actor (no-op for shared ones)."""
        if session_id.endswith(DEDICATED_SUFFIX):
            ray.kill(self.host_for(session_id), no_restart=True)
            self._forget(session_id)

    async def wait_events(self, session_id: str, after: int, timeout_s: float) -> tuple[list[dict[str, Any]], bool]:
        """A session's events after ``after`` (a long poll of up to ``timeout_s``) and
        whether it was deleted."""
        return await self.call("wait_events", session_id, session_id, after, timeout_s)  # type: ignore[no-any-return]

    async def health(self) -> list[dict[str, Any]]:
        """Each host's health (``{"host_id", "store"}``, or ``{"host_id", "error"}``)."""
        self.members.follow()
        return await ask_each(self.hosts, "health")

    async def metrics_text(self) -> list[str]:
        """Each answering host's metrics (Prometheus text)."""
        return [text for text in await ask_each(self.hosts, "metrics_text") if isinstance(text, str)]

    async def get(self, session_id: str) -> dict[str, Any]:
        """A session's state and version."""
        return await self.call("get", session_id, session_id)  # type: ignore[no-any-return]

    async def patch(self, session_id: str, patch: dict[str, Any], if_version: int | None) -> dict[str, Any]:
        """Apply a JSON merge patch in one turn."""
        return await self.call("patch", session_id, session_id, patch, if_version)  # type: ignore[no-any-return]

    async def delete(self, session_id: str) -> None:
        """Delete a session (and stop its actor when dedicated)."""
        await self.call("delete", session_id, session_id)
        self.release(session_id)

    async def list(self, limit: int, before: str | None, tenant_tag: str | None = None) -> list[dict[str, Any]]:
        """Live sessions, newest first (any host reads the store); ``tenant_tag``: one tenant's."""
        return await self.call("list", before or "", limit, before, tenant_tag)  # type: ignore[no-any-return]
