"""RunHost: a Ray actor hosting many runs at once (asyncio), placed by run id."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import ray
from ray.actor import ActorHandle

from ..errors import InvalidRequestError
from ..settings import Settings
from ..store import open_store
from ..workflow import Workflow
from .batching import BatchTarget, Call
from .cluster_capacity import resource_wait_s
from .gc_tuning import tune_gc
from .host_metrics import ProcessCpu
from .peers import RayPeers
from .remote_nodes import RayNodeRunner
from .restarts import was_restarted
from .run_service import RunService
from .sessions_client import SessionsClient
from .thread_switching import tune_thread_switching

PARKED_KEEP_S = 60.0  # a parked run's task waits this long for its claim once done


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class RunHost(BatchTarget):
    """Ray actor wrapper of :class:`RunService`.

    Restarted by Ray after its process dies (``__init__`` runs again and loads the current
    workflows from the catalog); calls in flight are retried on the new incarnation, which
    finds their runs in the store and waits for them while its lease loop adopts and
    resumes them. Runs arrive batched (``call_batch`` of ``execute``, see batching.py).
    """

    BATCHED = frozenset({"execute"})
    CLAIM = "await_run"  # a parked run is claimed by its id (see park)

    def __init__(self, host_id: str, catalog: ActorHandle, sessions: SessionsClient, settings: dict[str, Any]) -> None:
        super().__init__()
        tune_gc()
        tune_thread_switching()
        self._parked_runs: dict[str, asyncio.Task[Any]] = {}
        self._catalog = catalog
        config = Settings(**settings)
        workflows = cast(dict[str, Workflow], ray.get(catalog.all.remote()))
        factory = (lambda: open_store(config.store_url, config.home)) if config.durable else None
        self.service: RunService = RunService(
            host_id,
            workflows,
            config.node_threads,
            factory,
            config.lease_s,
            RayNodeRunner(resource_wait_s(config.resource_wait_s, embedded=False)),  # the app resolves it
            sessions,
            config.max_runs_per_tenant,
            self._lookup,
            retention_s=config.run_retention_days * 86400 if config.run_retention_days is not None else None,
            crash_retries=config.crash_retries,
            peers=RayPeers(sessions.prefix),  # the app's prefix, which the PoolManager names hosts with
        )
        if was_restarted():  # calls in flight come again
            self.service.expect_retries()
        self.service.start_maintenance()
        self._cpu: ProcessCpu = ProcessCpu()

    async def _lookup(self, name: str) -> Workflow | None:
        workflow: Workflow | None = await self._catalog.get.remote(name)
        return workflow

    async def execute(self, name: str, node_inputs: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any]:
        return await self.service.execute(name, node_inputs, run_id)

    def batch_method(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method not in self.BATCHED:
            raise InvalidRequestError(f"{method!r} cannot be batched on a RunHost.")
        return super().batch_method(method)

    def park(self, task: asyncio.Task[Any], call: Call) -> Call:
        # A slow run is claimed by its id: that also works on the next incarnation of the
        # host (the run is in the store), where a parked task would be lost. The task is
        # kept too: a run refused before it was stored (e.g. 429) is only in its error.
        run_id = call[1][2]
        self._parked_runs[run_id] = task
        task.add_done_callback(lambda done: self._forget_parked(run_id, done))
        return self.CLAIM, (run_id,)

    def _forget_parked(self, run_id: str, task: asyncio.Task[Any]) -> None:
        if not task.cancelled():
            task.exception()  # retrieved here; the claim re-raises it
        asyncio.get_running_loop().call_later(PARKED_KEEP_S, self._parked_runs.pop, run_id, None)

    async def await_run(self, run_id: str) -> dict[str, Any]:
        task = self._parked_runs.pop(run_id, None)
        if task is not None:
            return await task  # type: ignore[no-any-return]
        return await self.service.wait_for(run_id)

    async def wait_events(self, run_id: str, after: int, timeout_s: float) -> tuple[list[dict[str, Any]], bool]:
        return await self.service.wait_events(run_id, after, timeout_s)

    async def get_run(self, run_id: str) -> dict[str, Any]:
        return await self.service.get_run(run_id)

    async def execute_in_session(
        self, name: str, inputs: dict[str, Any], run_id: str, session_id: str, wait: bool
    ) -> dict[str, Any]:
        return await self.service.execute_in_session(name, inputs, run_id, session_id, wait)

    async def execute_idempotent(
        self, key: str, digest: str, name: str, node_inputs: dict[str, dict[str, Any]], run_id: str, wait: bool
    ) -> dict[str, Any]:
        return await self.service.execute_idempotent(key, digest, name, node_inputs, run_id, wait)

    async def execute_idempotent_in_session(
        self, key: str, digest: str, name: str, inputs: dict[str, Any], run_id: str, session_id: str, wait: bool
    ) -> dict[str, Any]:
        return await self.service.execute_idempotent_in_session(key, digest, name, inputs, run_id, session_id, wait)

    async def start(self, name: str, node_inputs: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any]:
        return await self.service.start(name, node_inputs, run_id)

    async def cancel(self, run_id: str) -> dict[str, Any]:
        return await self.service.cancel(run_id)

    async def stop_cancelled(self, run_id: str) -> bool:
        return await self.service.stop_cancelled(run_id)

    async def wait_events_here(self, run_id: str, after: int, timeout_s: float) -> tuple[list[dict[str, Any]], bool]:
        return await self.service.wait_events_here(run_id, after, timeout_s)

    async def list_runs(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return await self.service.list_runs(**filters)

    async def register(self, name: str, workflow: Workflow) -> None:
        self.service.register(name, workflow)

    async def unregister(self, name: str) -> None:
        self.service.unregister(name)

    async def health(self) -> dict[str, Any]:
        return await self.service.health()

    async def metrics_text(self) -> str:
        return self.service.metrics_text()

    async def info(self) -> dict[str, Any]:
        return self.service.info()

    async def load(self) -> dict[str, float]:
        """What the PoolManager scales on: runs in flight here and this process's CPU use."""
        return {"active": float(self.service.info()["active_runs"]), "cpu": self._cpu.percent()}
