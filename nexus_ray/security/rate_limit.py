"""Token-bucket rate limits, enforced across every ingress replica together.

The buckets live in one actor (the SecurityHost). A replica takes tokens from it in
leases — 1 token for small limits (exact), up to 2% of the capacity for large ones — and
spends them locally, so a busy principal costs one actor call per lease, not per request.
The error: at most ``replicas x lease`` tokens sit unused in replicas (the limit is never
exceeded; it can be under-used by that much).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..errors import ConfigurationError, RateLimitedError

UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
LEASE_SHARE = 0.02


@dataclass(frozen=True)
class RateSpec:
    """``capacity`` requests per ``period_s`` (a bucket of that size, refilled evenly)."""

    capacity: int
    period_s: float

    @classmethod
    def parse(cls, text: str) -> RateSpec:
        """``'100/minute'``, ``'10/second'``, ``'5000/hour'``, ``'20/10s'``."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(?:(\d+(?:\.\d+)?)\s*(s|m|h)|(second|minute|hour|day)s?)\s*", text)
        if match is None or int(match.group(1)) < 1:
            raise ConfigurationError(
                f"Rate limit {text!r} is not like '100/minute' (units: second, minute, hour, day; or '20/10s')."
            )
        if match.group(4):
            period = UNITS[match.group(4)]
        else:
            period = float(match.group(2)) * {"s": 1.0, "m": 60.0, "h": 3600.0}[match.group(3)]
        return cls(int(match.group(1)), period)

    @property
    def per_s(self) -> float:
        """Refill rate, tokens per second."""
        return self.capacity / self.period_s

    @property
    def lease(self) -> int:
        """Tokens a replica takes at once."""
        return max(1, int(self.capacity * LEASE_SHARE))

    def __str__(self) -> str:
        return f"{self.capacity}/{self.period_s:g}s"


@dataclass
class Bucket:
    """One token bucket's state (in the SecurityHost)."""

    tokens: float
    updated: float

    def take(self, spec: RateSpec, wanted: int, now: float) -> tuple[int, float]:
        """Take up to ``wanted`` whole tokens: (taken, seconds until one more is available)."""
        self.tokens = min(spec.capacity, self.tokens + (now - self.updated) * spec.per_s)
        self.updated = now
        taken = min(wanted, int(self.tokens))
        self.tokens -= taken
        return taken, max(0.0, (1 - self.tokens) / spec.per_s)

    def reset_s(self, spec: RateSpec) -> float:
        """Seconds until the bucket is full again."""
        return (spec.capacity - self.tokens) / spec.per_s


@dataclass(frozen=True)
class Grant:
    """What the SecurityHost answered: tokens taken, when to retry, the bucket's state."""

    taken: int
    retry_after_s: float
    remaining: int
    reset_s: float


Take = Callable[[str, RateSpec, int], Awaitable[Grant]]


class RateLimiter:
    """A replica's side: local leases per bucket key, refilled from the shared buckets."""

    def __init__(self, take: Take) -> None:
        self._take = take
        self._leased: dict[str, int] = {}
        self._inflight: dict[str, asyncio.Future[Grant]] = {}
        self._empty_until: dict[str, float] = {}  # no token can exist before then: refuse locally
        self.last: dict[str, Grant] = {}

    async def admit(self, key: str, spec: RateSpec, what: str) -> Grant:
        """Spend one token of ``key``'s bucket, or raise 429 naming ``what`` and when to retry."""
        while True:
            if self._leased.get(key, 0) > 0:
                self._leased[key] -= 1
                return self.last[key]
            wait = self._empty_until.get(key, 0.0) - time.monotonic()
            if wait > 0:
                raise _limited(what, spec, wait, self.last[key].reset_s)
            pending = self._inflight.get(key)
            if pending is not None:  # one lease request per key at a time
                await asyncio.shield(pending)
                continue
            grant = await self._refill(key, spec)
            if grant.taken == 0:
                self._empty_until[key] = time.monotonic() + grant.retry_after_s
                raise _limited(what, spec, grant.retry_after_s, grant.reset_s)

    async def _refill(self, key: str, spec: RateSpec) -> Grant:
        future: asyncio.Future[Grant] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            grant = await self._take(key, spec, spec.lease)
            self._leased[key] = self._leased.get(key, 0) + grant.taken
            self.last[key] = grant
            future.set_result(grant)
            return grant
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # marked retrieved; waiters get the same error
            raise
        finally:
            del self._inflight[key]


def _limited(what: str, spec: RateSpec, retry_after_s: float, reset_s: float) -> RateLimitedError:
    return RateLimitedError(
        f"Rate limit of {what} ({spec.capacity} per {spec.period_s:g} s) reached; "
        f"retry in {math.ceil(retry_after_s)} s.",
        retry_after_s=retry_after_s,
        limit=spec.capacity,
        reset_s=reset_s,
    )


def headers(spec: RateSpec, grant: Grant) -> dict[str, str]:
    """RateLimit headers (IETF draft) for a response under ``spec``."""
    return {
        "ratelimit-limit": str(spec.capacity),
        "ratelimit-remaining": str(grant.remaining),
        "ratelimit-reset": str(max(0, math.ceil(grant.reset_s))),
    }
