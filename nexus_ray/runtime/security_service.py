"""The logic of the SecurityHost, free of Ray: API keys (followed from the store), the
shared rate-limit buckets, and the audit trail's writer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from ..security.api_keys import ApiKey
from ..security.rate_limit import Bucket, Grant, RateSpec
from ..store import AsyncStore, Store
from .rounds import repeat

logger = logging.getLogger("nexus_ray.security")
KEY_POLL_S = 0.5  # keys created or revoked from another process (CLI) show within this
PURGE_EVERY_S = 60.0  # how often audit entries past the retention are deleted
PURGE_CHUNK = 1000  # audit entries per purge transaction


class SecurityService:
    """Keys, buckets and audit for every ingress replica of one app. Its methods are the
    ``SecurityCalls`` a Guard needs, so in one process it serves a Guard directly."""

    def __init__(self, store_factory: Callable[[], Store], audit_retention_s: float | None = None) -> None:
        self.store = AsyncStore(store_factory)
        self.audit_retention_s = audit_retention_s
        self._purging: asyncio.Task[None] | None = None
        self.keys: list[ApiKey] = []
        self.version = 0
        self._fingerprint: str | None = None
        self._changed = asyncio.Condition()
        self.buckets: dict[str, Bucket] = {}
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Load the keys and follow the store for changes."""
        await self.refresh_keys()
        self._poller = asyncio.get_running_loop().create_task(self._poll_keys())
        if self.audit_retention_s is not None:
            purge = repeat("purging old audit entries", self.purge_audit, PURGE_EVERY_S)
            self._purging = asyncio.get_running_loop().create_task(purge)

    async def refresh_keys(self) -> bool:
        """Re-read the keys when the store's changed; whether they did."""
        fingerprint = await self.store.call("api_keys_fingerprint")
        if fingerprint == self._fingerprint:
            return False
        self.keys = await self.store.call("api_keys")
        self._fingerprint = fingerprint
        self.version += 1
        async with self._changed:
            self._changed.notify_all()
        return True

    async def _poll_keys(self) -> None:
        while True:
            await asyncio.sleep(KEY_POLL_S)
            try:
                await self.refresh_keys()
                self._sweep_buckets()
            except Exception:  # the store is down for a moment: keep the keys we have
                logger.warning("reading API keys failed", exc_info=True)

    async def wait_keys(self, version: int, timeout_s: float) -> tuple[int, list[ApiKey]]:
        """The keys once their version differs from ``version`` (or after ``timeout_s``)."""
        if self._poller is None:
            await self.start()
        if version == self.version:
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait_for(lambda: self.version != version), timeout_s)
        return self.version, self.keys

    async def take(self, key: str, spec: RateSpec, wanted: int) -> Grant:
        """Take up to ``wanted`` tokens from ``key``'s bucket."""
        now = time.monotonic()
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = Bucket(float(spec.capacity), now)
        taken, retry_after = bucket.take(spec, wanted, now)
        return Grant(taken, retry_after, int(bucket.tokens), bucket.reset_s(spec))

    def _sweep_buckets(self) -> None:
        """Forget buckets idle long enough to be full again (they would start full)."""
        now = time.monotonic()
        stale = [k for k, b in self.buckets.items() if now - b.updated > 86400]  # longest period: a day
        for key in stale:
            del self.buckets[key]

    async def append_audit(self, entries: list[dict[str, Any]]) -> None:
        """Store audit entries (one transaction)."""
        await self.store.call("append_audit", entries)

    async def list_audit(self, tenant: str, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """A tenant's audit entries, newest first."""
        return await self.store.call("list_audit", tenant, **filters)  # type: ignore[no-any-return]

    async def purge_audit(self) -> int:
        """Delete the audit entries older than the retention, a chunk per transaction; how many."""
        assert self.audit_retention_s is not None
        return await self.store.drain("purge_audit", time.time() - self.audit_retention_s, chunk=PURGE_CHUNK)

    async def close(self) -> None:
        """Stop polling and purging; close the store."""
        for task in (self._poller, self._purging):
            if task is not None:
                task.cancel()
        self.store.close()
