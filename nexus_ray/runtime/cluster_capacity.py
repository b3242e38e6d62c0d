"""Whether any node of the Ray cluster could ever run a task with a given resource request.

Ray keeps a task that no node can fit pending for ever (an autoscaler may add a node that
fits; without one nothing will), so a node asking for a GPU on a laptop would hang its run
with no word. A resource node's request is compared with the totals of the cluster's live
nodes while its task waits in Ray's queue (where the autoscaler sees it): when none fits,
the node waits up to ``wait_s`` for one to join (0 on an embedded local Ray) and then
fails, naming what it asked for and what the closest node has.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ResourcesUnavailableError

NodeTotals = list[dict[str, float]]
REFRESH_S = 2.0  # the cluster's nodes are read at most this often (a GCS call)
RECHECK_S = 0.25  # ... and this often before a node is told nothing fits
DEFAULT_TASK_CPUS = 1.0  # what Ray reserves for a task that does not say
# On a cluster the autoscaler may add a node that fits (a cloud GPU node takes minutes);
# nothing adds nodes to an embedded local Ray.
CLUSTER_WAIT_S = 600.0


def resource_wait_s(configured: float | None, embedded: bool) -> float:
    """How long a node waits for a node that fits: NEXUS_RESOURCE_WAIT_S when set, else
    0 on an embedded local Ray and CLUSTER_WAIT_S on a cluster."""
    if configured is not None:
        return configured
    return 0.0 if embedded else CLUSTER_WAIT_S


def demand(resources: Mapping[str, Any]) -> dict[str, float]:
    """The Ray resource amounts a task with these ``ray.remote`` options reserves."""
    wanted: dict[str, float] = {"CPU": float(resources.get("num_cpus", DEFAULT_TASK_CPUS))}
    if resources.get("num_gpus"):
        wanted["GPU"] = float(resources["num_gpus"])
    if resources.get("memory"):
        wanted["memory"] = float(resources["memory"])
    for name, amount in (resources.get("resources") or {}).items():
        wanted[name] = float(amount)
    if resources.get("accelerator_type"):
        wanted[f"accelerator_type:{resources['accelerator_type']}"] = 0.001  # Ray's own marker amount
    return {name: amount for name, amount in wanted.items() if amount > 0}


def fits(wanted: Mapping[str, float], totals: Mapping[str, float]) -> bool:
    """Whether a node with ``totals`` can hold ``wanted``."""
    return all(totals.get(name, 0.0) >= amount for name, amount in wanted.items())


def unavailable(node_id: str, wanted: Mapping[str, float], nodes: NodeTotals, waited_s: float) -> str:
    """The message of a request that no node fits."""
    best = max(nodes, key=lambda totals: sum(totals.get(n, 0.0) >= a for n, a in wanted.items()), default=None)
    have = "the cluster has no live node" if best is None else f"the closest node has {_relevant(best, wanted)}"
    after = "" if waited_s <= 0 else f" within {waited_s:g} s (NEXUS_RESOURCE_WAIT_S)"
    return (
        f"node {node_id!r} asks for {dict(wanted)}, but no node of the Ray cluster has that{after}; {have}. "
        "Lower the node's resources=, add a node that has them, or let the cluster autoscaler add one "
        "(NEXUS_RESOURCE_WAIT_S says how long a node waits for it)."
    )


def _relevant(totals: Mapping[str, float], wanted: Mapping[str, float]) -> dict[str, float]:
    return {name: totals.get(name, 0.0) for name in wanted}


class ClusterCapacity:
    """The live nodes' resource totals, read at most every REFRESH_S.

    Args:
        list_nodes: Returns each live node's total resources (blocking; run in a thread).
        wait_s: How long a request no node fits waits for a node that fits.
    """

    def __init__(self, list_nodes: Callable[[], NodeTotals], wait_s: float) -> None:
        self.list_nodes, self.wait_s = list_nodes, wait_s
        self._nodes: NodeTotals = []
        self._read_at = float("-inf")
        self._reading = asyncio.Lock()

    async def nodes(self, max_age_s: float | None = None) -> NodeTotals:
        """The live nodes' totals, read again when older than ``max_age_s`` (REFRESH_S)."""
        max_age_s = REFRESH_S if max_age_s is None else max_age_s
        if time.monotonic() - self._read_at >= max_age_s:
            async with self._reading:  # many runs at once: one read serves them all
                if time.monotonic() - self._read_at >= max_age_s:
                    self._nodes = await asyncio.to_thread(self.list_nodes)
                    self._read_at = time.monotonic()
        return self._nodes

    async def wait_for_fit(
        self, node_id: str, resources: Mapping[str, Any], on_wait: Callable[[dict[str, float]], None]
    ) -> None:
        """Return once some live node could hold the request (at once in the usual case).

        Raises:
            ResourcesUnavailableError: none could within ``wait_s``.
        """
        wanted = demand(resources)
        if any(fits(wanted, totals) for totals in await self.nodes()):
            return
        nodes = await self.nodes(RECHECK_S)  # a node may have joined since the last read
        deadline = time.monotonic() + self.wait_s
        if not any(fits(wanted, totals) for totals in nodes) and self.wait_s > 0:
            on_wait(wanted)
        while not any(fits(wanted, totals) for totals in nodes):
            if time.monotonic() >= deadline:
                raise ResourcesUnavailableError(unavailable(node_id, wanted, nodes, self.wait_s), node=node_id)
            await asyncio.sleep(min(REFRESH_S, max(0.0, deadline - time.monotonic())))
            nodes = await self.nodes()  # one read per REFRESH_S, however many nodes wait


def ray_node_totals() -> NodeTotals:
    """Each live Ray node's total resources."""
    import ray

    return [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]
