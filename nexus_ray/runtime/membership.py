"""A client's view of one host pool's members, kept current while the pool grows and shrinks.

The PoolManager actor holds the truth (``members(kind)``, ``wait_change(kind, version, ...)``).
Every router (PoolClient, SessionsClient) carries a MemberView: in async code it follows
the manager with a long poll, so a resize reaches every ingress replica within
milliseconds; in sync code (scripts, notebooks) it asks at most once a second; and it
asks at once when a host says it no longer owns an id or a host is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import ActorDiedError, RayActorError, RayTaskError

from .hashing import HashRing

logger = logging.getLogger("nexus_ray.runtime")
SYNC_CHECK_S = 1.0  # how stale a synchronous caller's view may get before it asks again
WATCH_TIMEOUT_S = 30.0
CLOSED = -1  # what the PoolManager answers a long poll once the app stops
# A caller whose host died asks for the members again this many times, waiting longer each
# time (lost_host_backoff: 15.5 s in all). The hosts are the PoolManager's actors: when it
# crashes they die with it, and it makes new ones once Ray restarts it (~5 s here).
HOST_LOST_ATTEMPTS = 20


def lost_host_backoff(attempt: int) -> float:
    """The wait before attempt ``attempt + 1`` of a call whose host died (none before the
    second: after a resize the members have changed already)."""
    return 0.0 if attempt <= 1 else min(0.05 * 2 ** (attempt - 2), 1.0)


class MemberView:
    """The members of pool ``kind`` ("run" or "session") and their hash ring.

    Args:
        hosts: Host id → actor handle, as known when the view is made.
        manager: The PoolManager to follow; None: the members never change.
        kind: Which of the manager's pools.
        version: The version ``hosts`` belong to.
    """

    def __init__(
        self, hosts: dict[str, ActorHandle], manager: ActorHandle | None = None, kind: str = "run", version: int = 0
    ) -> None:
        self.manager, self.kind = manager, kind
        self.version, self.hosts, self.ring = version, dict(hosts), HashRing(list(hosts))
        self._checked = time.monotonic()
        self._watching: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()

    def __getstate__(self) -> dict[str, Any]:
        return {"hosts": self.hosts, "manager": self.manager, "kind": self.kind, "version": self.version}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)  # type: ignore[misc]

    def apply(self, version: int, hosts: dict[str, ActorHandle]) -> None:
        """Take members of ``version`` (ignored when not newer than the current ones)."""
        if version > self.version and hosts:
            self.version, self.hosts, self.ring = version, dict(hosts), HashRing(list(hosts))

    def follow(self) -> None:
        """Keep this view current from the running event loop (once per loop; cheap to
        call on every request)."""
        if self.manager is None:
            return
        loop = asyncio.get_running_loop()
        if loop not in self._watching:
            self._watching.add(loop)
            task = loop.create_task(self._watch())
            keep_running(task)

    async def _watch(self) -> None:
        assert self.manager is not None
        while True:
            try:
                version, hosts = await self.manager.wait_change.remote(self.kind, self.version, WATCH_TIMEOUT_S)
                if version == CLOSED:
                    return
                self.apply(version, hosts)
            except asyncio.CancelledError:
                raise
            except ActorDiedError:  # the app was stopped: nothing more to follow
                return
            except (RayActorError, RayTaskError) as exc:  # the manager restarts: ask again shortly
                logger.debug("pool manager unavailable (%s); retrying", exc)
                await asyncio.sleep(0.5)

    async def refresh(self) -> None:
        """Ask the manager for the current members now."""
        if self.manager is not None:
            with contextlib.suppress(RayActorError):
                self.apply(*await self.manager.members.remote(self.kind))

    def refresh_blocking(self, force: bool = False) -> None:
        """The same from synchronous code; unless ``force``, at most once a second."""
        if self.manager is None or (not force and time.monotonic() - self._checked < SYNC_CHECK_S):
            return
        self._checked = time.monotonic()
        with contextlib.suppress(RayActorError):
            self.apply(*ray.get(self.manager.members.remote(self.kind)))


class FollowsMembers:
    """A router over one pool's :attr:`members` (a MemberView), with its current hosts
    and ring as attributes."""

    members: MemberView

    @property
    def hosts(self) -> dict[str, ActorHandle]:
        """The pool's current hosts by id."""
        return self.members.hosts

    @property
    def ring(self) -> HashRing:
        """The current hash ring over :attr:`hosts`."""
        return self.members.ring


_background: set[asyncio.Task[Any]] = set()


def keep_running(task: asyncio.Task[Any]) -> None:
    """Hold a reference to a background task until it ends (asyncio keeps only weak ones)
    and log its failure (nobody awaits it)."""
    _background.add(task)
    task.add_done_callback(_finished)


def _finished(task: asyncio.Task[Any]) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.error("background task %s failed", task.get_name(), exc_info=task.exception())
