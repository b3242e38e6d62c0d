"""When a dedicated SessionHost may stop: its one session has left memory and no call
has come for the idle time.

A dedicated session has a Ray actor of its own, a whole worker process. Passivation drops
a session from memory, but its actor stayed up, and so did the actor of a session that
expired: with ``session_isolation="dedicated"`` every session ever made kept a process.
The actor is created again by the next call for the session (see SessionsClient).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, Protocol, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class IdleClock:
    """Calls in flight on a host and when the last one came or went."""

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self.in_flight = 0
        self.last_call = time.monotonic()

    def enter(self) -> None:
        """A call started."""
        self.in_flight += 1
        self.last_call = time.monotonic()

    def leave(self) -> None:
        """A call ended."""
        self.in_flight -= 1
        self.last_call = time.monotonic()

    def may_stop(self, sessions_in_memory: int) -> bool:
        """No call running, none for ``idle_s``, and no session in memory."""
        quiet = time.monotonic() - self.last_call >= self.idle_s
        return self.in_flight == 0 and sessions_in_memory == 0 and quiet


class HasIdleClock(Protocol):
    idle: IdleClock


S = TypeVar("S", bound=HasIdleClock)


def counted(method: Callable[Concatenate[S, P], Awaitable[R]]) -> Callable[Concatenate[S, P], Awaitable[R]]:
    """Count an actor method's calls on its host's ``idle`` clock."""

    @functools.wraps(method)
    async def call(self: S, *args: P.args, **kwargs: P.kwargs) -> R:
        self.idle.enter()
        try:
            return await method(self, *args, **kwargs)
        finally:
            self.idle.leave()

    return call


def check_every_s(idle_s: float) -> float:
    """How often a dedicated host asks whether it may stop."""
    return max(0.05, min(idle_s, 10.0) / 2)
