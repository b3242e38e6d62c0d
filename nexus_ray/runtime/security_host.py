"""SecurityHost: the one actor per app that every ingress replica shares for API keys,
rate-limit buckets and audit writes (none of them on a request's path but a rate-limit
lease; see security/rate_limit.py)."""

from __future__ import annotations

from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayActorError, RayTaskError

from ..security.api_keys import ApiKey
from ..security.rate_limit import Grant, RateSpec
from ..settings import Settings
from ..store import open_store
from .errors import translate_ray_error
from .security_service import SecurityService


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)
class SecurityHost:
    """Ray actor wrapper of :class:`SecurityService`. After a restart, keys are read again
    from the store and buckets start full."""

    def __init__(self, settings: dict[str, Any]) -> None:
        config = Settings(**settings)
        days = config.audit_retention_days
        retention_s = days * 86400 if days is not None else None
        self.service = SecurityService(lambda: open_store(config.store_url, config.home), retention_s)

    async def ready(self) -> int:
        return (await self.service.wait_keys(-1, 0.0))[0]

    async def wait_keys(self, version: int, timeout_s: float) -> tuple[int, list[ApiKey]]:
        return await self.service.wait_keys(version, timeout_s)

    async def take(self, key: str, spec: RateSpec, wanted: int) -> Grant:
        return await self.service.take(key, spec, wanted)

    async def append_audit(self, entries: list[dict[str, Any]]) -> None:
        await self.service.append_audit(entries)

    async def list_audit(self, tenant: str, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return await self.service.list_audit(tenant, filters)


class SecurityClient:
    """A picklable client of the SecurityHost (what each replica's Guard calls)."""

    def __init__(self, handle: ActorHandle) -> None:
        self.handle = handle

    async def _call(self, method: str, *args: Any) -> Any:
        try:
            return await getattr(self.handle, method).remote(*args)
        except (RayTaskError, RayActorError) as exc:
            raise translate_ray_error(exc) from exc

    async def wait_keys(self, version: int, timeout_s: float) -> tuple[int, list[ApiKey]]:
        """Keys when their version moves past ``version`` (a long poll)."""
        return await self._call("wait_keys", version, timeout_s)  # type: ignore[no-any-return]

    async def take(self, key: str, spec: RateSpec, wanted: int) -> Grant:
        """Tokens from a shared bucket."""
        return await self._call("take", key, spec, wanted)  # type: ignore[no-any-return]

    async def append_audit(self, entries: list[dict[str, Any]]) -> None:
        """Store audit entries."""
        await self._call("append_audit", entries)

    async def list_audit(self, tenant: str, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """A tenant's audit entries, newest first."""
        return await self._call("list_audit", tenant, filters)  # type: ignore[no-any-return]


def start_security_host(name: str, namespace: str, settings: Settings, detached: bool = False) -> SecurityClient:
    """Start the app's SecurityHost (keys loaded before this returns); ``detached``: it
    outlives the process that starts it (a deployment)."""
    config = settings.portable() | {"home": str(settings.home.resolve())}
    lifetime = {"lifetime": "detached"} if detached else {}
    handle = SecurityHost.options(name=name, namespace=namespace, **lifetime).remote(config)  # type: ignore[attr-defined]
    ray.get(handle.ready.remote())
    return SecurityClient(handle)
