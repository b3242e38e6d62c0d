"""Events from inside a running node: ``nexus_ray.progress(...)`` and ``nexus_ray.emit(...)``.

They work from any node code (async, or sync code in the node thread pool) and are
delivered with the run's other events, in order. Nodes that run as Ray tasks elsewhere in
the cluster (``resources=``) have no channel back to their host and raise if they try.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from ..checks import is_number
from ..errors import NexusError
from .events import check_custom_event

if TYPE_CHECKING:
    from .engine import EngineHooks


PROGRESS_EVERY_S = 0.1  # at most one node.progress per node this often (the latest values)


class NodeEvents:
    """The running node's way back to its run's events (thread-safe: sync node code runs
    in a worker thread). Events arrive in the order they were sent. Progress is coalesced:
    a node reporting every row of a loop would otherwise write a stored event per row
    (100,000 calls: 100,000 rows, 13.5 MB, 1.4 s); at most one ``node.progress`` goes out
    every PROGRESS_EVERY_S with the latest values, and the last one before any later event
    and before the node ends (see :meth:`flush`)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, hooks: EngineHooks, node_id: str) -> None:
        self.loop, self.hooks, self.node_id = loop, hooks, node_id
        self._lock = threading.Lock()
        self._latest: dict[str, Any] | None = None  # progress not sent yet
        self._armed = False  # a flush of it is due
        self._timer: asyncio.TimerHandle | None = None
        self._sent_at = -math.inf
        self._closed = False

    def send(self, event_type: str, data: dict[str, Any]) -> None:
        """Add an event now (after the progress reported before it)."""
        with self._lock:
            if self._closed:
                return
            progress, self._latest = self._latest, None
        self.loop.call_soon_threadsafe(self._deliver, progress, event_type, data)

    def progress(self, data: dict[str, Any]) -> None:
        """Report progress: sent at once if none went out in the last PROGRESS_EVERY_S,
        else with the latest values when that time is up."""
        with self._lock:
            if self._closed:
                return
            self._latest = data
            if self._armed:
                return
            self._armed = True
        self.loop.call_soon_threadsafe(self._arm)

    def flush(self) -> None:
        """Send the progress not sent yet (on the loop)."""
        with self._lock:
            progress, self._latest, self._armed = self._latest, None, False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deliver(progress, None, None)

    def close(self) -> None:
        """The node's attempt ended (on the loop): send the progress not sent yet; what a
        timed-out node's thread reports later is dropped with its result."""
        with self._lock:
            self._closed = True
        self.flush()

    def _arm(self) -> None:
        if self._closed:
            return
        due = self._sent_at + PROGRESS_EVERY_S - time.monotonic()
        self._timer = self.loop.call_later(max(0.0, due), self.flush)

    def _deliver(self, progress: dict[str, Any] | None, event_type: str | None, data: dict[str, Any] | None) -> None:
        if progress is not None:
            self._sent_at = time.monotonic()
            self.hooks.node_event(self.node_id, "node.progress", progress)
        if event_type is not None and data is not None:
            self.hooks.node_event(self.node_id, event_type, data)


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
    current.send(event_type, check_custom_event(event_type, data or {}))


def progress(fraction: float | None = None, message: str | None = None) -> None:
    """Report the current node's progress: a ``node.progress`` event with ``fraction``
    (0..1) and/or ``message``."""
    current = _current("progress")
    if fraction is not None and not (is_number(fraction) and 0 <= fraction <= 1):
        raise ValueError(f"progress fraction must be a number between 0 and 1, got {fraction!r}")
    if message is not None and not isinstance(message, str):  # the store could not write it (see emit)
        raise ValueError(f"progress message must be a string, got {type(message).__name__}")
    current.progress({"fraction": fraction, "message": message})
