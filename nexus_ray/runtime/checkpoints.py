"""Engine hooks that record every node state change as the run's ``node.*`` event.

With a store, the event is the checkpoint (the store reads a run's node states back from
its events): it is queued with the run's other writes, and for a node with dependents the
engine waits for its commit, so those outputs are durable before any node that uses them
starts. The other events (starts, skips, failures, outputs of final nodes) commit in order
with the run's final status, which the host does wait for. Without a store the events go
straight to the host's feed.
"""

from __future__ import annotations

from typing import Any

from ..store import AsyncStore
from ..workflow import EngineHooks, NodeStatus
from ..workflow.events import node_event
from .event_feed import EventFeed


class RunEvents:
    """Where a run's events go: the store (its host publishes them after the commit) or,
    without a store, straight to the host's feed."""

    def __init__(self, run_id: str, store: AsyncStore | None, feed: EventFeed) -> None:
        self.run_id, self.store, self.feed = run_id, store, feed

    def emit(self, event_type: str, data: dict[str, Any]) -> None:
        """Record an event (queued; ordered with the run's other writes)."""
        if self.store is not None:
            self.store.submit_for(self.run_id, "append_event", "run", self.run_id, event_type, data)
        else:
            self.feed.append(self.run_id, event_type, data)

    async def commit(self, event_type: str, data: dict[str, Any]) -> None:
        """Record an event and, with a store, wait until it is committed."""
        if self.store is not None:
            await self.store.call_for(self.run_id, "append_event", "run", self.run_id, event_type, data)
        else:
            self.feed.append(self.run_id, event_type, data)


class RunHooks(EngineHooks):
    """A run's node events; ``gates`` (nodes with dependents) wait for their commit, and
    with ``commit_starts`` (a resumed run) so does each node's start."""

    def __init__(self, events: RunEvents, gates: frozenset[str] = frozenset(), commit_starts: bool = False) -> None:
        self.events, self.gates, self.commit_starts = events, gates, commit_starts

    async def node_started(self, node_id: str) -> None:
        if self.commit_starts:  # stored before it runs: a node that kills its host is then counted
            await self.events.commit(*node_event(node_id, NodeStatus.RUNNING))
        else:
            self.events.emit(*node_event(node_id, NodeStatus.RUNNING))

    async def node_completed(self, node_id: str, outputs: dict[str, Any], duration_ms: float) -> None:
        event = node_event(node_id, NodeStatus.COMPLETED, outputs=outputs, duration_ms=duration_ms)
        if node_id in self.gates:
            await self.events.commit(*event)
        else:
            self.events.emit(*event)

    async def node_failed(self, node_id: str, error: dict[str, Any]) -> None:
        self.events.emit(*node_event(node_id, NodeStatus.FAILED, error=error))

    async def node_skipped(self, node_id: str, reason: str) -> None:
        self.events.emit(*node_event(node_id, NodeStatus.SKIPPED, reason=reason))

    async def node_retrying(self, node_id: str, attempt: int, error: dict[str, Any], delay_s: float) -> None:
        data = {"node": node_id, "attempt": attempt, "error": error, "delay_s": delay_s}
        self.events.emit("node.retrying", data)

    def node_event(self, node_id: str, event_type: str, data: dict[str, Any]) -> None:
        self.events.emit(event_type, {"node": node_id, **data})
