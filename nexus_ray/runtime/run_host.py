"""RunHost: a Ray actor that hosts many runs at once (asyncio), placed by run id."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray

from ..errors import WorkflowNotFoundError
from ..workflow import RunResult, RunStatus, Workflow, WorkflowEngine

logger = logging.getLogger("nexus_ray.runtime")


class RunService:
    """The logic of a RunHost, free of Ray so it can be tested in-process.

    Args:
        host_id: Name of the host (its place on the hash ring).
        workflows: Registered name → workflow.
        node_threads: Threads for synchronous node code.
    """

    def __init__(self, host_id: str, workflows: dict[str, Workflow], node_threads: int = 64) -> None:
        self.host_id = host_id
        self.workflows = dict(workflows)
        self.executor = ThreadPoolExecutor(max_workers=node_threads, thread_name_prefix=f"{host_id}-node")
        self.engine = WorkflowEngine(self.executor)
        self.active = 0

    def register(self, name: str, workflow: Workflow) -> None:
        """Add or replace a workflow."""
        self.workflows[name] = workflow

    def unregister(self, name: str) -> None:
        """Remove a workflow (runs under way finish)."""
        self.workflows.pop(name, None)

    async def execute(self, name: str, node_inputs: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any]:
        """Run ``name`` with resolved per-node inputs; the RunResult as a dict."""
        workflow = self.workflows.get(name)
        if workflow is None:
            raise WorkflowNotFoundError(f"No workflow named {name!r} on host {self.host_id}.", workflow=name)
        started = time.perf_counter()
        self.active += 1
        try:
            outcome = await self.engine.execute(workflow, node_inputs, run_id=run_id, workflow_name=name)
        finally:
            self.active -= 1
        result = RunResult(
            run_id=run_id,
            workflow=name,
            status=outcome.status,
            outputs=outcome.outputs,
            duration_ms=round((time.perf_counter() - started) * 1000, 3),
            error=outcome.error,
            nodes=outcome.nodes,
        )
        if result.status == RunStatus.FAILED:
            logger.debug("run %s of %s failed: %s", run_id, name, outcome.error)
        return result.to_dict()

    def info(self) -> dict[str, Any]:
        """Host id, process id, workflows and runs in flight."""
        return {"host_id": self.host_id, "pid": os.getpid(), "workflows": sorted(self.workflows), "active_runs": self.active}


@ray.remote(num_cpus=0, max_restarts=-1)
class RunHost:
    """Ray actor wrapper of :class:`RunService` (async: many runs concurrently)."""

    def __init__(self, host_id: str, workflows: dict[str, Workflow], node_threads: int = 64) -> None:
        self.service = RunService(host_id, workflows, node_threads)

    async def execute(self, name: str, node_inputs: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any]:
        return await self.service.execute(name, node_inputs, run_id)

    async def register(self, name: str, workflow: Workflow) -> None:
        self.service.register(name, workflow)

    async def unregister(self, name: str) -> None:
        self.service.unregister(name)

    async def info(self) -> dict[str, Any]:
        return self.service.info()
