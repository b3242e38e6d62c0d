"""Nodes that declare resources run as Ray tasks, placed by Ray (and the autoscaler)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import ray

from ..errors import ResourcesUnavailableError
from ..exits import exit_error
from ..workflow import Node, NodeContext
from ..workflow.progress import CURRENT_NODE
from .cluster_capacity import ClusterCapacity, ray_node_totals

SYSTEM_RETRIES = 3


# A worker or node that dies (system failure) is retried by Ray, on another node if need
# be; exceptions raised by the node are not: retrying them is the node policy's job (backoff, retry_on).
@ray.remote(max_retries=SYSTEM_RETRIES, retry_exceptions=False)
def _run_node_task(node: Node, inputs: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    try:
        return asyncio.run(node.run(inputs, ctx))
    except SystemExit as exc:  # else the worker exits with it, and Ray runs the task again (3 times)
        raise exit_error(exc, f"node {ctx.node_id!r}") from None


class RayNodeRunner:
    """Runs a node as a Ray task with the node's resource request. The task is submitted
    at once (the autoscaler scales on pending tasks); if no node of the cluster could hold
    it and none joins within ``resource_wait_s``, it is cancelled and the node fails
    (see cluster_capacity.py)."""

    def __init__(self, resource_wait_s: float) -> None:
        self.capacity = ClusterCapacity(ray_node_totals, resource_wait_s)

    async def run_node(
        self, node: Node, inputs: dict[str, Any], ctx: NodeContext, resources: dict[str, Any]
    ) -> dict[str, Any]:
        task_ctx = replace(ctx, executor=None)  # the host's thread pool stays in the host
        ref = _run_node_task.options(**resources).remote(node, inputs, task_ctx)
        try:
            await self.capacity.wait_for_fit(ctx.node_id, resources, self._waiting)
            return await ref  # type: ignore[no-any-return]
        except (asyncio.CancelledError, ResourcesUnavailableError):
            ray.cancel(ref)  # cancelled, timed out, or nowhere to run: stop the task too
            raise
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause
            raise cause if isinstance(cause, Exception) else exc from None

    def _waiting(self, wanted: dict[str, float]) -> None:
        """Tell the run's stream why its node does not start yet."""
        current = CURRENT_NODE.get()
        if current is not None:
            current.send("node.waiting", {"resources": wanted, "wait_s": self.capacity.wait_s})
