"""SessionHost: a Ray actor hosting many sessions (virtual actors), placed by session id."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import ray

from ..errors import InvalidRequestError
from ..settings import Settings
from ..store import open_store
from ..workflow import RunStatus
from .batching import BatchTarget
from .gc_tuning import tune_gc
from .host_metrics import ProcessCpu
from .idle_stop import IdleClock, check_every_s, counted
from .restarts import was_restarted
from .session_service import DEDICATED_HOST_PREFIX, SessionService
from .sessions_client import SESSION_BATCHED


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class SessionHost(BatchTarget):
    """Ray actor wrapper of :class:`SessionService`. After a restart its sessions are
    simply re-activated from the store on their next message. Quick calls arrive batched
    (``call_batch``, see batching.py)."""

    def batch_method(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method not in SESSION_BATCHED:
            raise InvalidRequestError(f"{method!r} cannot be batched on a SessionHost.")
        return super().batch_method(method)

    def __init__(self, host_id: str, settings: dict[str, Any]) -> None:
        super().__init__()
        tune_gc()
        config = Settings(**settings)
        self.service: SessionService = SessionService(
            host_id, lambda: open_store(config.store_url, config.home), config.session_idle_s
        )
        if was_restarted():  # calls in flight come again
            self.service.expect_retries()
        self.service.start_maintenance(every_s=min(10.0, config.session_idle_s))
        self.idle = IdleClock(config.session_idle_s)
        if host_id.startswith(DEDICATED_HOST_PREFIX):
            self._stopping = asyncio.get_event_loop().create_task(self._stop_when_idle())
        self._cpu: ProcessCpu = ProcessCpu()

    @counted
    async def create(
        self, session_id: str, state: dict[str, Any] | None, ttl_s: float | None, channel: str | None = None
    ) -> dict[str, Any]:
        return await self.service.create(state, ttl_s, session_id=session_id, channel=channel)

    @counted
    async def sync(self, session_id: str, channel: str) -> dict[str, Any]:
        return await self.service.sync(session_id, channel)

    @counted
    async def emit(self, session_id: str | None, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        return await self.service.emit(session_id, event_type, data)

    @counted
    async def events(
        self, session_id: str | None, event_type: str | None, after: int, limit: int
    ) -> list[dict[str, Any]]:
        return await self.service.events(session_id, event_type, after, limit)

    @counted
    async def wait_events(self, session_id: str, after: int, timeout_s: float) -> tuple[list[dict[str, Any]], bool]:
        return await self.service.wait_events(session_id, after, timeout_s)

    @counted
    async def get(self, session_id: str) -> dict[str, Any]:
        return await self.service.get(session_id)

    @counted
    async def patch(
        self, session_id: str, patch: dict[str, Any], if_version: int | None, turn_id: str | None = None
    ) -> dict[str, Any]:
        return await self.service.patch(session_id, patch, if_version, turn_id)

    @counted
    async def turn(
        self,
        session_id: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        if_version: int | None,
        turn_id: str | None = None,
    ) -> dict[str, Any]:
        return await self.service.turn(session_id, change, if_version, turn_id)

    @counted
    async def complete_run(
        self,
        session_id: str,
        run_id: str,
        status: RunStatus,
        outputs: dict[str, Any],
        error: dict[str, Any] | None,
        patches: list[dict[str, Any]],
        read_version: int | None = None,
    ) -> tuple[RunStatus, dict[str, Any] | None]:
        return await self.service.complete_run(session_id, run_id, status, outputs, error, patches, read_version)

    @counted
    async def delete(self, session_id: str) -> None:
        await self.service.delete(session_id)

    @counted
    async def list(self, limit: int, before: str | None, tenant_tag: str | None = None) -> list[dict[str, Any]]:
        return await self.service.list(limit, before, tenant_tag)

    async def health(self) -> dict[str, Any]:
        return await self.service.health()

    async def metrics_text(self) -> str:
        return self.service.metrics_text()

    async def info(self) -> dict[str, Any]:
        return self.service.info()

    async def load(self) -> dict[str, float]:
        """What the PoolManager scales on: sessions in memory and this process's CPU use."""
        return {"active": float(self.service.info()["active_sessions"]), "cpu": self._cpu.percent()}

    async def adopt_ring(self, version: int, members: Sequence[str]) -> int:
        return await self.service.adopt_ring(version, members)

    async def _stop_when_idle(self) -> None:
        """A dedicated host stops once its session has left memory and no call has come for
        ``session_idle_s``; the next call for the session starts it again."""
        while True:
            await asyncio.sleep(check_every_s(self.idle.idle_s))
            if self.idle.may_stop(self.service.info()["active_sessions"]):
                self.service.close()
                ray.kill(ray.get_runtime_context().current_actor, no_restart=True)
                return
