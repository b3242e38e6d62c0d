"""Nodes that declare resources run as Ray tasks, placed by Ray (and the autoscaler)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import ray

from ..workflow import Node, NodeContext

SYSTEM_RETRIES = 3


# A worker or node that dies (system failure) is retried by Ray, on another node if need
# be; exceptions raised by the node are not: retrying them is the node policy's job (backoff, retry_on).
@ray.remote(max_retries=SYSTEM_RETRIES, retry_exceptions=False)
def _run_node_task(node: Node, inputs: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
    return asyncio.run(node.run(inputs, ctx))


class RayNodeRunner:
    """Runs a node as a Ray task with the node's resource request."""

    async def run_node(
        self, node: Node, inputs: dict[str, Any], ctx: NodeContext, resources: dict[str, Any]
    ) -> dict[str, Any]:
        task_ctx = replace(ctx, executor=None)  # the host's thread pool stays in the host
        ref = _run_node_task.options(**resources).remote(node, inputs, task_ctx)
        try:
            return await ref  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            ray.cancel(ref)  # the run was cancelled or the node timed out: stop the task too
            raise
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause
            raise cause if isinstance(cause, Exception) else exc from None
