"""A picklable client that sends each session call to the SessionHost owning the id."""

from __future__ import annotations

from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayActorError, RayTaskError

from .errors import translate_ray_error
from .hashing import HashRing
from .ids import new_run_id


class SessionsClient:
    """Routes session calls by consistent hashing of the session id (one hop)."""

    def __init__(self, hosts: dict[str, ActorHandle]) -> None:
        self.hosts = hosts
        self.ring = HashRing(list(hosts))

    async def call(self, method: str, session_id: str, *args: Any) -> Any:
        """``method`` on the host of ``session_id`` (for ``create``: the host of a fresh key)."""
        try:
            return await getattr(self.hosts[self.ring.member_for(session_id)], method).remote(*args)
        except (RayTaskError, RayActorError) as exc:
            raise translate_ray_error(exc) from exc

    def call_blocking(self, method: str, session_id: str, *args: Any) -> Any:
        """The same from synchronous code."""
        try:
            return ray.get(getattr(self.hosts[self.ring.member_for(session_id)], method).remote(*args))
        except (RayTaskError, RayActorError) as exc:
            raise translate_ray_error(exc) from exc

    async def create(self, state: dict[str, Any] | None, ttl_s: float | None) -> dict[str, Any]:
        """A new session on the host its new id belongs to."""
        session_id = new_run_id()
        return await self.call("create", session_id, session_id, state, ttl_s)  # type: ignore[no-any-return]

    def create_blocking(
        self, state: dict[str, Any] | None, ttl_s: float | None, channel: str | None = None
    ) -> dict[str, Any]:
        """The same from synchronous code."""
        session_id = new_run_id()
        return self.call_blocking("create", session_id, session_id, state, ttl_s, channel)  # type: ignore[no-any-return]

    async def get(self, session_id: str) -> dict[str, Any]:
        """A session's state and version."""
        return await self.call("get", session_id, session_id)  # type: ignore[no-any-return]

    async def patch(self, session_id: str, patch: dict[str, Any], if_version: int | None) -> dict[str, Any]:
        """Apply a JSON merge patch in one turn."""
        return await self.call("patch", session_id, session_id, patch, if_version)  # type: ignore[no-any-return]

    async def delete(self, session_id: str) -> None:
        """Delete a session."""
        await self.call("delete", session_id, session_id)

    async def list(self, limit: int, before: str | None) -> list[dict[str, Any]]:
        """Live sessions, newest first (any host reads the store)."""
        return await self.call("list", before or "", limit, before)  # type: ignore[no-any-return]
