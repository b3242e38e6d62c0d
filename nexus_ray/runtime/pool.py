"""The RunHost pool and a picklable client that routes each run to its host in one hop."""

from __future__ import annotations

from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayActorError, RayTaskError

from ..errors import NexusError, RuntimeUnavailableError
from ..workflow import Workflow
from .hashing import HashRing
from .run_host import RunHost

NAMESPACE = "nexus"


class PoolClient:
    """Routes a run to the RunHost that owns its id (consistent hashing). Picklable, so the
    ingress replicas carry their own copy and call the host directly."""

    def __init__(self, hosts: dict[str, ActorHandle]) -> None:
        self.hosts = hosts
        self.ring = HashRing(list(hosts))

    def host_for(self, run_id: str) -> ActorHandle:
        """The actor that hosts ``run_id``."""
        return self.hosts[self.ring.member_for(run_id)]

    async def execute(self, name: str, node_inputs: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any]:
        """Execute a run on its host and return the RunResult dict."""
        try:
            return await self.host_for(run_id).execute.remote(name, node_inputs, run_id)  # type: ignore[no-any-return]
        except (RayTaskError, RayActorError) as exc:
            raise translate_ray_error(exc) from exc

    def execute_blocking(self, name: str, node_inputs: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any]:
        """Like :meth:`execute`, for synchronous callers (scripts, notebooks)."""
        try:
            return ray.get(self.host_for(run_id).execute.remote(name, node_inputs, run_id))  # type: ignore[no-any-return]
        except (RayTaskError, RayActorError) as exc:
            raise translate_ray_error(exc) from exc


def translate_ray_error(exc: Exception) -> Exception:
    """Unwrap a NexusError raised inside an actor; a dead actor is RuntimeUnavailableError."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, NexusError):
        return cause
    if isinstance(exc, RayActorError):
        return RuntimeUnavailableError(f"A run host is not available: {exc}. Retry shortly.")
    return exc


class RunHostPool:
    """Creates and owns the RunHost actors.

    Args:
        size: Number of hosts.
        workflows: Name → workflow, handed to each host (and again after a restart).
        node_threads: Threads per host for synchronous node code.
    """

    def __init__(self, size: int, workflows: dict[str, Workflow], node_threads: int) -> None:
        self.hosts: dict[str, ActorHandle] = {}
        for i in range(size):
            host_id = f"run-host-{i}"
            self.hosts[host_id] = RunHost.options(  # type: ignore[attr-defined]
                name=f"nexus-{host_id}", namespace=NAMESPACE, get_if_exists=False
            ).remote(host_id, workflows, node_threads)
        ray.get([h.info.remote() for h in self.hosts.values()])

    def client(self) -> PoolClient:
        """A picklable router over the pool."""
        return PoolClient(self.hosts)

    def register(self, name: str, workflow: Workflow) -> None:
        """Add a workflow to every host."""
        ray.get([h.register.remote(name, workflow) for h in self.hosts.values()])

    def info(self) -> list[dict[str, Any]]:
        """Each host's info."""
        return ray.get([h.info.remote() for h in self.hosts.values()])  # type: ignore[no-any-return]

    def shutdown(self) -> None:
        """Kill every host."""
        for handle in self.hosts.values():
            ray.kill(handle, no_restart=True)
        self.hosts.clear()
