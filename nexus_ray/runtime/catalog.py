"""The app's workflows, in one small actor.

Ray restarts a dead RunHost with its original constructor arguments, which would miss
workflows registered after start(); a host therefore loads the current set from here.
Ingress replicas watch it too (``wait_change``): registering or removing a workflow while
serving updates their routes and MCP tools in place, and MCP clients that listen get
``tools/list_changed``.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import ray

from ..workflow import Workflow


@ray.remote(num_cpus=0, max_restarts=-1)
class WorkflowCatalog:
    """Name → workflow (for hosts) and name → registered entry with its schemas (for
    channels), with a version that moves on every change."""

    def __init__(self, workflows: dict[str, Workflow], entries: dict[str, Any] | None = None) -> None:
        self.workflows = dict(workflows)
        self.entries = dict(entries or {})
        self.version = 1
        self._changed = asyncio.Event()

    async def put(self, name: str, workflow: Workflow, entry: Any = None) -> int:
        self.workflows[name] = workflow
        if entry is not None:
            self.entries[name] = entry
        return self._bump()

    async def remove(self, name: str) -> int:
        self.workflows.pop(name, None)
        self.entries.pop(name, None)
        return self._bump()

    async def wait_change(self, version: int, timeout_s: float) -> tuple[int, dict[str, Any]]:
        """(version, entries) as soon as the version differs from ``version`` (or after
        ``timeout_s``: then with the same version)."""
        if version == self.version:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout_s)
        return self.version, self.entries

    async def all(self) -> dict[str, Workflow]:
        return self.workflows

    async def get(self, name: str) -> Workflow | None:
        return self.workflows.get(name)

    def _bump(self) -> int:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()
        return self.version
