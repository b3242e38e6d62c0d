"""The PoolManager: owns the RunHost and SessionHost pools, publishes their members and
resizes them by the scaling policy, moving virtual actors without losing any.

How a resize moves ids (see membership.py for how clients follow):
- RunHosts. Any RunHost can serve any run: the store holds every run, its checkpoints and
  events (get, cancel, wait and events of a run executing elsewhere are read from the
  store). Growing publishes the larger ring; new runs land on the new hosts. Shrinking
  publishes the ring without the victim first, lets it finish its runs (up to
  ``DRAIN_TIMEOUT_S``), then stops it; a run still going then is adopted by a live host
  from its last committed node when its lease expires. That is why resizing needs the
  store (``durable``).
- SessionHosts. A session must be active on one host at a time. The new ring is pushed to
  every SessionHost before clients learn it: a host drops the sessions it gives away after
  their turn in flight commits and answers HostMovedError for them from then on; only when
  every host has the new ring is it published, so the new owner reads the latest state.
  Callers that meet HostMovedError ask for the members and retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayActorError, RayTaskError

from ..scaling import PoolScaler, ScalingPolicy
from .batching import ask_each
from .dedicated_slots import DedicatedSlots, host_name, sessions_of
from .membership import CLOSED, MemberView, keep_running
from .named_actors import NAMESPACE, actor_names, named_actors, pool_host_name

logger = logging.getLogger("nexus_ray.runtime")
DRAIN_TIMEOUT_S = 300.0  # a shrinking RunHost finishes its runs this long before it is stopped
GRACE_S = 2.0  # a removed host keeps answering this long after clients were told
EVERY_S = 1.0  # how often the hosts' load is read
HISTORY_KEPT = 1000  # size changes remembered per pool


@dataclass
class _Pool:
    kind: str
    hosts: dict[str, ActorHandle]
    version: int
    next_index: int
    scaler: PoolScaler | None
    started: float = field(default_factory=time.monotonic)
    history: list[tuple[float, int]] = field(default_factory=list)
    changed: asyncio.Event | None = None
    busy: bool = False  # a resize is under way (one at a time)

    def note(self) -> None:
        self.history.append((round(time.monotonic() - self.started, 2), len(self.hosts)))
        del self.history[:-HISTORY_KEPT]


# No task retries: a caller whose call fails while the manager restarts asks again itself.
@ray.remote(num_cpus=0, max_restarts=-1)
class PoolManager:
    """Creates the hosts, answers who the members are (with a long poll), and resizes each
    pool whose policy bounds differ.

    Args:
        prefix: Actor name prefix of this app (hosts are ``prefix-run-host-N``).
        catalog: The WorkflowCatalog handed to RunHosts.
        config: Settings handed to hosts.
        sizes: Initial hosts per pool (``{"run": n, "session": m}``).
        policy: The ScalingPolicy (as a dict).
        dedicated: Sessions are dedicated by default (``session_isolation``).
        detached: Hosts outlive the process that deployed the app (a cluster deployment).
    """

    def __init__(
        self,
        prefix: str,
        catalog: ActorHandle,
        config: dict[str, Any],
        sizes: dict[str, int],
        policy: dict[str, Any],
        dedicated: bool,
        detached: bool = False,
    ) -> None:
        self.prefix, self.catalog, self.config, self.dedicated = prefix, catalog, config, dedicated
        self.lifetime = {"lifetime": "detached"} if detached else {}
        self.me = ray.get_runtime_context().current_actor
        scaling = ScalingPolicy(**policy)
        resizes = {"run": scaling.resizes_run_hosts, "session": scaling.resizes_session_hosts}
        self.pools: dict[str, _Pool] = {}
        for kind in ("session", "run"):  # RunHosts get a client of the session pool
            found = self._existing_hosts(kind)
            scaler = scaling.pool_scaler(kind) if resizes[kind] else None
            pool = self.pools[kind] = _Pool(kind, found, _new_version(0), _next_index(found), scaler)
            handles = self._new_hosts(pool, max(0, sizes[kind] - len(found)))
            ray.get([h.info.remote() for h in handles.values()])
            pool.hosts.update(handles)
            pool.note()
        sessions = self.pools["session"]
        ray.get([h.adopt_ring.remote(sessions.version, list(sessions.hosts)) for h in sessions.hosts.values()])
        self.dedicated_slots = DedicatedSlots(
            config.get("max_dedicated_sessions", 32),
            self._live_dedicated,
            per_tenant=config.get("max_dedicated_sessions_per_tenant"),
        )
        self.closed = False
        self._loop_task: asyncio.Task[None] | None = None
        if any(p.scaler is not None for p in self.pools.values()):
            self._loop_task = asyncio.get_event_loop().create_task(self._autoscale())

    # -- members ------------------------------------------------------------------------
    async def members(self, kind: str) -> tuple[int, dict[str, ActorHandle]]:
        """(version, host id → handle) of pool ``kind``."""
        pool = self.pools[kind]
        return pool.version, pool.hosts

    async def wait_change(self, kind: str, version: int, timeout_s: float) -> tuple[int, dict[str, ActorHandle]]:
        """The members as soon as their version differs from ``version`` (or after
        ``timeout_s``, unchanged)."""
        pool = self.pools[kind]
        if self.closed:
            return CLOSED, {}
        if pool.version == version:
            if pool.changed is None:
                pool.changed = asyncio.Event()
            changed = pool.changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout_s)
        return (CLOSED, {}) if self.closed else (pool.version, pool.hosts)

    async def history(self, kind: str) -> list[tuple[float, int]]:
        """(seconds since start, hosts) at each change of pool ``kind``."""
        return self.pools[kind].history

    async def resize(self, kind: str, size: int) -> int:
        """Grow or shrink pool ``kind`` to ``size`` hosts now (after a resize under way;
        shrinking one host at a time, each drained); the size reached."""
        if size < 1:
            raise ValueError("a pool needs at least one host")
        pool = self.pools[kind]
        while pool.busy:
            await asyncio.sleep(0.1)
        pool.busy = True
        await self._resize_to(pool, size)
        return len(pool.hosts)

    async def shutdown(self) -> None:
        """Tell every follower the app stops (no long poll is left in flight when this
        actor is killed), then stop every host of both pools."""
        self.closed = True
        if self._loop_task is not None:
            self._loop_task.cancel()
        for pool in self.pools.values():
            if pool.changed is not None:
                pool.changed.set()
        await asyncio.sleep(0.05)  # the woken long polls answer first
        for pool in self.pools.values():
            for handle in pool.hosts.values():
                ray.kill(handle, no_restart=True)
            pool.hosts = {}

    # -- dedicated sessions ----------------------------------------------------------------
    async def admit_dedicated(self, session_id: str, beyond_limit: bool = False) -> str | None:
        """None when dedicated session ``session_id`` may start its actor, else the setting
        whose limit it reached (see dedicated_slots.py)."""
        return await self.dedicated_slots.admit(session_id, beyond_limit)

    async def _live_dedicated(self) -> set[str]:
        names = await asyncio.to_thread(actor_names, host_name(self.prefix, ""))
        return sessions_of(self.prefix, names)

    # -- resizing -----------------------------------------------------------------------
    async def _autoscale(self) -> None:
        while True:
            await asyncio.sleep(EVERY_S)
            for pool in self.pools.values():
                if pool.scaler is None or pool.busy:
                    continue
                try:
                    await self._autoscale_once(pool, pool.scaler)
                except Exception:
                    logger.exception("resizing the %s host pool failed; trying again", pool.kind)

    async def _autoscale_once(self, pool: _Pool, scaler: PoolScaler) -> None:
        # A host that fails or does not answer counts neither way (it is restarting, or leaving).
        loads = [load for load in await ask_each(pool.hosts, "load", 5.0) if "error" not in load]
        if not loads:
            return
        active = sum(load["active"] for load in loads)
        cpu = sum(load["cpu"] for load in loads) / len(loads)
        size = len(pool.hosts)
        wanted = scaler.desired(time.monotonic(), size, active, cpu)
        if wanted == size:
            return
        scaler.resized(time.monotonic())
        pool.busy = True  # a shrink may drain for minutes: the loop goes on meanwhile
        keep_running(asyncio.get_running_loop().create_task(self._resize_to(pool, wanted)))

    async def _resize_to(self, pool: _Pool, size: int) -> None:
        """Grow at once, or shrink one host at a time, to ``size``; the pool is ``busy``
        until done."""
        try:
            while len(pool.hosts) != size:
                await (self._grow(pool, size - len(pool.hosts)) if len(pool.hosts) < size else self._shrink(pool))
        finally:
            pool.busy = False

    async def _grow(self, pool: _Pool, count: int) -> None:
        handles = self._new_hosts(pool, count)
        await asyncio.gather(*(h.info.remote() for h in handles.values()))
        await self._switch(pool, {**pool.hosts, **handles})
        logger.info("%s host pool grew to %d", pool.kind, len(pool.hosts))

    async def _shrink(self, pool: _Pool) -> None:
        victim_id = max(pool.hosts, key=_index)  # the newest host goes first
        victim = pool.hosts[victim_id]
        await self._switch(pool, {h: v for h, v in pool.hosts.items() if h != victim_id}, extra=(victim,))
        if pool.kind == "run":
            await _drain(victim)
        await asyncio.sleep(GRACE_S)
        ray.kill(victim, no_restart=True)
        logger.info("%s host pool shrank to %d", pool.kind, len(pool.hosts))

    async def _switch(self, pool: _Pool, hosts: dict[str, ActorHandle], extra: tuple[ActorHandle, ...] = ()) -> None:
        """Make ``hosts`` the members: SessionHosts (and ``extra``, a host leaving) take the
        new ring first, then clients are told."""
        version = _new_version(pool.version)
        if pool.kind == "session":
            members = list(hosts)
            await asyncio.gather(*(h.adopt_ring.remote(version, members) for h in [*hosts.values(), *extra]))
        pool.hosts, pool.version = hosts, version
        pool.note()
        if pool.changed is not None:
            pool.changed.set()
            pool.changed = None

    # -- hosts --------------------------------------------------------------------------
    def _new_hosts(self, pool: _Pool, count: int) -> dict[str, ActorHandle]:
        """``count`` new hosts of ``pool`` (ids never reused: a leaving host keeps its name
        until it is stopped), not yet members."""
        ids = [f"{pool.kind}-host-{pool.next_index + i}" for i in range(count)]
        pool.next_index += count
        return {host_id: self._create(pool.kind, host_id) for host_id in ids}

    def _create(self, kind: str, host_id: str) -> ActorHandle:
        # SPREAD: on a cluster, a pool that grows takes other nodes' CPUs, not the head's.
        options = {
            "name": pool_host_name(self.prefix, host_id),
            "namespace": NAMESPACE,
            "get_if_exists": True,
            "scheduling_strategy": "SPREAD",
            **self.lifetime,
        }
        if kind == "session":
            from .session_host import SessionHost

            return SessionHost.options(**options).remote(host_id, self.config)  # type: ignore[attr-defined,no-any-return]
        from .run_host import RunHost
        from .sessions_client import SessionsClient

        session_pool = self.pools["session"]
        view = MemberView(session_pool.hosts, self.me, "session", session_pool.version)
        sessions = SessionsClient(view, self.prefix, self.config, self.dedicated)
        return RunHost.options(**options).remote(host_id, self.catalog, sessions, self.config)  # type: ignore[attr-defined,no-any-return]

    def _existing_hosts(self, kind: str) -> dict[str, ActorHandle]:
        """Hosts of this app that outlived a restart of the manager (found by name)."""
        found = named_actors(f"{self.prefix}-{kind}-host-")
        return {name[len(self.prefix) + 1 :]: handle for name, handle in found.items()}


async def _drain(host: ActorHandle) -> None:
    """Wait until a RunHost leaving the pool has no run in flight (or DRAIN_TIMEOUT_S)."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if (await host.load.remote())["active"] == 0:
                return
        except (RayActorError, RayTaskError):
            return
        await asyncio.sleep(0.5)
    logger.warning("a RunHost leaving the pool still had runs after %s s; they resume elsewhere", DRAIN_TIMEOUT_S)


def _new_version(previous: int) -> int:
    # Milliseconds: versions keep rising across a restart of the manager.
    return max(previous + 1, time.time_ns() // 1_000_000)


def _index(host_id: str) -> int:
    return int(host_id.rsplit("-", 1)[1])


def _next_index(hosts: dict[str, ActorHandle]) -> int:
    return max((_index(h) for h in hosts), default=-1) + 1
