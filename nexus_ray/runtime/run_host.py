"""RunHost: a Ray actor that hosts many runs at once (asyncio), placed by run id."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ray

from ..errors import NotFoundError, WorkflowNotFoundError
from ..workflow import RunResult, RunStatus, Workflow, WorkflowEngine
from .dispatch import PENDING, RunRequest

logger = logging.getLogger("nexus_ray.runtime")
UNCLAIMED_RESULT_TTL_S = 300.0


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
        self._unclaimed: dict[str, asyncio.Task[dict[str, Any]]] = {}

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

    async def execute_batch(self, requests: list[RunRequest], wait_s: float) -> list[tuple[str, Any]]:
        """Start every run; after at most ``wait_s`` reply per run with ``("ok", result)``,
        ``("error", exc)`` or ``("pending", None)`` (then claim it with :meth:`await_run`)."""
        tasks = [asyncio.ensure_future(self.execute(r.name, r.node_inputs, r.run_id)) for r in requests]
        await asyncio.wait(tasks, timeout=wait_s)
        replies: list[tuple[str, Any]] = []
        for request, task in zip(requests, tasks, strict=True):
            if not task.done():
                self._keep_unclaimed(request.run_id, task)
                replies.append((PENDING, None))
            elif task.exception() is not None:
                replies.append(("error", task.exception()))
            else:
                replies.append(("ok", task.result()))
        return replies

    def _keep_unclaimed(self, run_id: str, task: asyncio.Task[dict[str, Any]]) -> None:
        self._unclaimed[run_id] = task
        loop = asyncio.get_running_loop()
        # A caller that vanished never claims its run: drop the result after a while.
        task.add_done_callback(lambda _: loop.call_later(UNCLAIMED_RESULT_TTL_S, self._unclaimed.pop, run_id, None))

    async def await_run(self, run_id: str) -> dict[str, Any]:
        """The result of a run a batch reported as pending."""
        task = self._unclaimed.get(run_id)
        if task is None:
            raise NotFoundError(f"Run {run_id!r} is not running on host {self.host_id}.", run_id=run_id)
        try:
            return await asyncio.shield(task)
        finally:
            if task.done():
                self._unclaimed.pop(run_id, None)

    def info(self) -> dict[str, Any]:
        """Host id, process id, workflows and runs in flight."""
        return {
            "host_id": self.host_id,
            "pid": os.getpid(),
            "workflows": sorted(self.workflows),
            "active_runs": self.active,
        }


@ray.remote(num_cpus=0, max_restarts=-1)
class RunHost:
    """Ray actor wrapper of :class:`RunService` (async: many runs concurrently)."""

    def __init__(self, host_id: str, workflows: dict[str, Workflow], node_threads: int = 64) -> None:
        self.service = RunService(host_id, workflows, node_threads)

    async def execute(self, name: str, node_inputs: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any]:
        return await self.service.execute(name, node_inputs, run_id)

    async def execute_batch(self, requests: list[RunRequest], wait_s: float) -> list[tuple[str, Any]]:
        return await self.service.execute_batch(requests, wait_s)

    async def await_run(self, run_id: str) -> dict[str, Any]:
        return await self.service.await_run(run_id)

    async def register(self, name: str, workflow: Workflow) -> None:
        self.service.register(name, workflow)

    async def unregister(self, name: str) -> None:
        self.service.unregister(name)

    async def info(self) -> dict[str, Any]:
        return self.service.info()
