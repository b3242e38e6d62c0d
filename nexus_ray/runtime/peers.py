"""A RunHost's calls to the other RunHosts of its app, for runs that run off their id's host.

A run runs on a host other than the one its id belongs to after an adoption (its host
died) or after the pool grew (its id now belongs to a new host). Calls about it reach the
id's host, which asks the host running it (its owner in the store) where that matters: to
stop it at once after a cancel, and to follow its events live instead of from the store.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ray.actor import ActorHandle


class PeerGoneError(Exception):
    """The host asked is not there (stopped, or died): nothing of the run runs on it."""


class Peers(Protocol):
    """What a RunService may ask of the other RunHosts of its app."""

    async def call(self, host_id: str, method: str, args: tuple[Any, ...], timeout_s: float) -> Any:
        """``method(*args)`` on RunHost ``host_id``. Raises PeerGoneError when it is not
        there, TimeoutError when it does not answer within ``timeout_s``."""
        ...


class RayPeers:
    """The other RunHosts of app ``prefix``, found by their actor names; handles are
    kept until a call finds their actor gone. (Ray is imported when used: the RunService
    that holds this runs without Ray in the unit tests.)"""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._handles: dict[str, ActorHandle] = {}

    async def call(self, host_id: str, method: str, args: tuple[Any, ...], timeout_s: float) -> Any:
        from ray.exceptions import RayActorError

        handle = await self._handle(host_id)
        try:
            return await asyncio.wait_for(getattr(handle, method).remote(*args), timeout_s)
        except RayActorError:
            self._handles.pop(host_id, None)
            raise PeerGoneError(host_id) from None

    async def _handle(self, host_id: str) -> ActorHandle:
        import ray

        from .named_actors import NAMESPACE, pool_host_name

        handle = self._handles.get(host_id)
        if handle is None:
            name = pool_host_name(self.prefix, host_id)
            try:  # a lookup in the GCS: off the event loop
                handle = await asyncio.to_thread(ray.get_actor, name, namespace=NAMESPACE)
            except ValueError:  # no such actor
                raise PeerGoneError(host_id) from None
            self._handles[host_id] = handle
        return handle
