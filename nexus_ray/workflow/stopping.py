"""Stop node tasks without waiting for ever on one that ignores its cancellation.

A node's async code may catch ``CancelledError`` (a retry loop, a library that shields its
cleanup) and go on. ``asyncio.wait_for`` and ``gather`` then wait for it to finish on its own
terms, so a node timeout, a run's cancellation, a run timeout or a sibling's failure would
wait as long as the node liked, and a node that outlived its timeout would even complete.
Here a cancelled node gets a grace period to stop; one still running after it is left to
finish in the background, and whatever it returns or raises is discarded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from typing import Any, TypeVar

from .policy import NodeTimeoutError

logger = logging.getLogger("nexus_ray.workflow")
NodeTask = TypeVar("NodeTask", bound=asyncio.Future[Any])
STOP_GRACE_S = 1.0  # how long a cancelled node may take to stop before it is left behind
_left_behind: set[asyncio.Future[Any]] = set()  # strong references, so they are not collected mid-flight


NODE_TASK_PREFIX = "run "  # every node task's name starts so (see node_task_name)


def node_task_name(run_id: str, node_id: str) -> str:
    """The name of the asyncio task running a node (what a blocked loop's report names)."""
    return f"{NODE_TASK_PREFIX}{run_id} node {node_id!r}"


async def within(
    work: Coroutine[Any, Any, dict[str, Any]], timeout_s: float, node_id: str, task_name: str
) -> dict[str, Any]:
    """``work``'s outputs if it finishes within ``timeout_s``, else ``NodeTimeoutError``
    (also when it ignores the cancellation and finishes later)."""
    task = asyncio.get_running_loop().create_task(work, name=task_name)
    try:
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
    except asyncio.CancelledError:
        await stop({task: node_id})
        raise
    if task in done:
        return task.result()
    await stop({task: node_id})
    raise NodeTimeoutError(f"node {node_id!r} timed out after {timeout_s} s")


async def stop(tasks: Mapping[NodeTask, str], grace_s: float | None = None) -> None:
    """Cancel ``tasks`` (task → node id) and wait up to ``grace_s`` for them to end; leave
    those that do not behind, their results discarded."""
    if not tasks:
        return
    grace_s = STOP_GRACE_S if grace_s is None else grace_s
    for task in tasks:
        task.cancel()
    try:
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
    except asyncio.CancelledError:  # our caller is stopped too: keep what still runs referenced
        for task in tasks:
            _keep(task)
        raise
    for task in pending:
        logger.warning(
            "node %r did not stop within %s s of being cancelled (does it catch CancelledError?); "
            "it is left to finish and its result is discarded",
            tasks[task],
            grace_s,
        )
        _keep(task)


def _keep(task: asyncio.Future[Any]) -> None:
    if not task.done():
        _left_behind.add(task)
        task.add_done_callback(_forget)


def _forget(task: asyncio.Future[Any]) -> None:
    _left_behind.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.debug("a node left behind raised: %r", task.exception())


def left_behind() -> int:
    """How many cancelled nodes are still running in this process."""
    return len(_left_behind)
