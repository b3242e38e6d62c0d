"""Events from inside a running node: ``nexus_ray.progress(...)`` and ``nexus_ray.emit(...)``.

They work from any node code (async, or sync code in the node thread pool) and are
delivered with the run's other events, in order. Nodes that run as Ray tasks elsewhere in
the cluster (``resources=``) have no channel back to their host and raise if they try.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import NexusError
from .events import check_custom_event

if TYPE_CHECKING:
    from .engine import EngineHooks


@dataclass(frozen=True)
class NodeEvents:
    """The running node's way back to its run's events."""

    loop: asyncio.AbstractEventLoop
    hooks: EngineHooks
    node_id: str

    def send(self, event_type: str, data: dict[str, Any]) -> None:
        # Thread-safe and ordered: sync node code runs in a worker thread.
        self.loop.call_soon_threadsafe(self.hooks.node_event, self.node_id, event_type, data)


CURRENT_NODE: ContextVar[NodeEvents | None] = ContextVar("nexus_current_node", default=None)


def _current(what: str) -> NodeEvents:
    current = CURRENT_NODE.get()
    if current is None:
        raise NexusError(
            f"nexus_ray.{what}() works only inside a node running in a run host "
            "(not outside a run, nor in a node with resources=, which runs as a Ray task)."
        )
    return current


def emit(event_type: str, data: dict[str, Any] | None = None) -> None:
    """Add a custom event to the current run's stream (types starting ``run.``, ``node.``
    or ``session.`` are reserved). The node id is added to ``data``."""
    current = _current("emit")
    check_custom_event(event_type, data or {})
    current.send(event_type, dict(data or {}))


def progress(fraction: float | None = None, message: str | None = None) -> None:
    """Report the current node's progress: a ``node.progress`` event with ``fraction``
    (0..1) and/or ``message``."""
    current = _current("progress")
    if fraction is not None and not 0 <= fraction <= 1:
        raise ValueError(f"progress fraction must be between 0 and 1, got {fraction}")
    current.send("node.progress", {"fraction": fraction, "message": message})
