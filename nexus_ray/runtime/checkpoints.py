"""Engine hooks that commit every node state change to the store before the run goes on."""

from __future__ import annotations

import time
from typing import Any

from ..store import AsyncStore, NodeCheckpoint
from ..workflow import EngineHooks, NodeStatus


class CheckpointHooks(EngineHooks):
    """Persist node starts, outputs, failures and skips of one run.

    The engine awaits ``node_completed`` before it hands outputs to dependent nodes, so a
    node's outputs are committed before any node that uses them starts.
    """

    def __init__(self, store: AsyncStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self._started: dict[str, float] = {}

    async def node_started(self, node_id: str) -> None:
        self._started[node_id] = started = time.time()
        await self._save(NodeCheckpoint(node_id, NodeStatus.RUNNING, started_at=started))

    async def node_completed(self, node_id: str, outputs: dict[str, Any], duration_ms: float) -> None:
        await self._save(
            NodeCheckpoint(
                node_id, NodeStatus.COMPLETED, outputs, started_at=self._started.get(node_id), duration_ms=duration_ms
            )
        )

    async def node_failed(self, node_id: str, error: dict[str, Any]) -> None:
        await self._save(NodeCheckpoint(node_id, NodeStatus.FAILED, error=error, started_at=self._started.get(node_id)))

    async def node_skipped(self, node_id: str, reason: str) -> None:
        await self._save(NodeCheckpoint(node_id, NodeStatus.SKIPPED, reason=reason))

    async def _save(self, checkpoint: NodeCheckpoint) -> None:
        await self.store.call("checkpoint_node", self.run_id, checkpoint)
