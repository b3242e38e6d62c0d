"""Engine hooks that commit every node state change to the store before the run goes on."""

from __future__ import annotations

import time
from typing import Any

from ..store import AsyncStore, NodeCheckpoint
from ..workflow import EngineHooks, NodeStatus, Workflow


class CheckpointHooks(EngineHooks):
    """Persist node starts, outputs, failures and skips of one run.

    The engine awaits ``node_completed`` before it hands outputs to dependent nodes; for a
    node with dependents that call waits for the commit, so its outputs are durable before
    any node that uses them starts. Other checkpoints (starts, skips, failures, outputs of
    final nodes) are queued without waiting: the store commits in order, so they are
    durable before the run's final status, which the host does wait for.
    """

    def __init__(self, store: AsyncStore, run_id: str, workflow: Workflow) -> None:
        self.store, self.run_id, self.gates = store, run_id, workflow.feeds_others
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
