"""Engine hooks that record every node state change and its event: committed to the store
before the run goes on, or (without a store) published from memory."""

from __future__ import annotations

import time
from typing import Any

from ..store import AsyncStore, NodeCheckpoint
from ..workflow import EngineHooks, NodeStatus, Workflow
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
            self.store.submit("append_event", "run", self.run_id, event_type, data)
        else:
            self.feed.append(self.run_id, event_type, data)


class EventHooks(EngineHooks):
    """Node events of a run without a store (nothing to checkpoint)."""

    def __init__(self, events: RunEvents) -> None:
        self.events = events

    async def node_started(self, node_id: str) -> None:
        self.events.emit(*node_event(node_id, NodeStatus.RUNNING))

    async def node_completed(self, node_id: str, outputs: dict[str, Any], duration_ms: float) -> None:
        self.events.emit(*node_event(node_id, NodeStatus.COMPLETED, outputs=outputs, duration_ms=duration_ms))

    async def node_failed(self, node_id: str, error: dict[str, Any]) -> None:
        self.events.emit(*node_event(node_id, NodeStatus.FAILED, error=error))

    async def node_skipped(self, node_id: str, reason: str) -> None:
        self.events.emit(*node_event(node_id, NodeStatus.SKIPPED, reason=reason))

    async def node_retrying(self, node_id: str, attempt: int, error: dict[str, Any], delay_s: float) -> None:
        data = {"node": node_id, "attempt": attempt, "error": error, "delay_s": delay_s}
        self.events.emit("node.retrying", data)

    def node_event(self, node_id: str, event_type: str, data: dict[str, Any]) -> None:
        self.events.emit(event_type, {"node": node_id, **data})


class CheckpointHooks(EventHooks):
    """Persist node starts, outputs, failures and skips of one run, each with its event.

    The engine awaits ``node_completed`` before it hands outputs to dependent nodes; for a
    node with dependents that call waits for the commit, so its outputs are durable before
    any node that uses them starts. Other checkpoints (starts, skips, failures, outputs of
    final nodes) are queued without waiting: the store commits in order, so they are
    durable before the run's final status, which the host does wait for.
    """

    def __init__(self, events: RunEvents, store: AsyncStore, workflow: Workflow) -> None:
        super().__init__(events)
        self.store, self.run_id, self.gates = store, events.run_id, workflow.feeds_others
        self._started: dict[str, float] = {}

    async def node_started(self, node_id: str) -> None:
        self._started[node_id] = started = time.time()
        self.store.submit(
            "checkpoint_node", self.run_id, NodeCheckpoint(node_id, NodeStatus.RUNNING, started_at=started)
        )

    async def node_completed(self, node_id: str, outputs: dict[str, Any], duration_ms: float) -> None:
        checkpoint = NodeCheckpoint(
            node_id, NodeStatus.COMPLETED, outputs, started_at=self._started.get(node_id), duration_ms=duration_ms
        )
        if node_id in self.gates:
            await self.store.call("checkpoint_node", self.run_id, checkpoint)
        else:
            self.store.submit("checkpoint_node", self.run_id, checkpoint)

    async def node_failed(self, node_id: str, error: dict[str, Any]) -> None:
        failed = NodeCheckpoint(node_id, NodeStatus.FAILED, error=error, started_at=self._started.get(node_id))
        self.store.submit("checkpoint_node", self.run_id, failed)

    async def node_skipped(self, node_id: str, reason: str) -> None:
        self.store.submit("checkpoint_node", self.run_id, NodeCheckpoint(node_id, NodeStatus.SKIPPED, reason=reason))
