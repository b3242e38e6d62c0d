"""The audit trail: who did what to which workflow, run or session, when, from which
channel, with what outcome. Entries never hold credentials or inputs.

Each process buffers its entries and sends them to the SecurityHost, which stores them,
every ``FLUSH_S`` (and when it stops), so auditing costs no actor call on the request
path. A process killed outright loses at most its last ``FLUSH_S`` of entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..runtime.ids import new_run_id
from ..stored_text import storable_form
from .principal import Principal

logger = logging.getLogger("nexus_ray.audit")
FLUSH_S = 0.25
MAX_BUFFERED = 50_000
Sink = Callable[[list[dict[str, Any]]], Awaitable[None]]


def outcome_of(status: int) -> str:
    """The outcome word of an HTTP status."""
    if status < 400:
        return "ok"
    return {401: "unauthenticated", 403: "denied", 404: "not_found", 429: "rate_limited"}.get(
        status, "error" if status >= 500 else "rejected"
    )


class AuditTrail:
    """Buffers entries and flushes them to ``sink`` in the background."""

    def __init__(self, sink: Sink | None) -> None:
        self.sink = sink
        self._buffer: list[dict[str, Any]] = []
        self._flusher: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        """Whether entries are kept."""
        return self.sink is not None

    def record(
        self,
        principal: Principal,
        channel: str,
        action: str,
        status: int,
        *,
        target: str | None = None,
        workflow: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Keep an entry, its outcome named after ``status`` (sent within ``FLUSH_S``);
        nothing is built when the trail is off."""
        if self.sink is None:
            return
        texts = {
            "tenant": principal.tenant,
            "subject": principal.subject,
            "channel": channel,
            "action": action,
            "target": target,
            "workflow": workflow,
        }
        item = {
            "audit_id": new_run_id(),
            "at": time.time(),
            # A NUL in a path's id failed the whole batch on PostgreSQL, and every batch
            # after it, for good: the trail stopped until a restart lost what was buffered.
            **{name: storable_form(text) if text is not None else None for name, text in texts.items()},
            "outcome": outcome_of(status),
            "status": status,
            "detail": detail,
        }
        if len(self._buffer) >= MAX_BUFFERED:  # the store is down for long: keep the newest
            del self._buffer[: MAX_BUFFERED // 10]
            logger.error("audit buffer full; dropped the oldest %d entries", MAX_BUFFERED // 10)
        self._buffer.append(item)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_S)
        await self.flush()

    async def flush(self) -> None:
        """Send what is buffered now (kept for the next try when the sink fails)."""
        if self.sink is None or not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        try:
            await self.sink(batch)
        except Exception:
            logger.exception("sending %d audit entries failed; retrying", len(batch))
            self._buffer[:0] = batch
            await asyncio.sleep(1.0)
            if self._flusher is None or self._flusher.done() or self._flusher is asyncio.current_task():
                self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def close(self) -> None:
        """Flush and stop."""
        if self._flusher is not None and not self._flusher.done() and self._flusher is not asyncio.current_task():
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher
        await self.flush()
