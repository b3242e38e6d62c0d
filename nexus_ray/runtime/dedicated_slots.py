"""How many dedicated sessions may have an actor at once.

A dedicated session has a Ray actor of its own: a worker process of ~94 MB RSS (~50 MB
unique), started at ~1.5 a second (DESIGN.md). Nothing bounded them: `POST /sessions
{"dedicated": true}` in a loop, or `session_isolation="dedicated"` under load, started
processes until the machine ran out of memory, and Ray's OOM killer then took actors of
every kind. The PoolManager holds these slots; a caller asks it before it starts a
dedicated session's actor (not before each call: only when it has no handle to one).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable

from ..security.tenancy import DEDICATED_SUFFIX

RECHECK_S = 1.0  # at the limit, the live actors are listed at most this often
STARTING_S = 2.0  # a slot just given out counts while its actor is being created (named within ms)


def host_name(prefix: str, session_id: str) -> str:
    """The Ray actor name of dedicated session ``session_id``'s host in app ``prefix``."""
    return f"{prefix}-session-{session_id}"


def sessions_of(prefix: str, names: Iterable[str]) -> set[str]:
    """The dedicated sessions whose hosts these actor names are (the pool's SessionHosts,
    ``prefix-session-host-N``, are not)."""
    head = host_name(prefix, "")
    return {name[len(head) :] for name in names if name.startswith(head) and name.endswith(DEDICATED_SUFFIX)}


class DedicatedSlots:
    """Slots for dedicated session actors, at most ``limit`` held at once.

    A slot is held from when it is given out; it is freed when its actor is gone, which
    is found by listing the live ones (``live``: the session ids whose actor exists) when
    the slots run out (and once at first, so actors that outlived a restart of the
    manager count). So an actor that stopped itself (idle), was stopped (its session
    deleted) or died frees its slot without telling anyone.
    """

    def __init__(
        self,
        limit: int,
        live: Callable[[], Awaitable[set[str]]],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.live, self.clock = limit, live, clock
        self._held: dict[str, float] = {}  # session id -> when its slot was given out
        self._checked = float("-inf")

    @property
    def held(self) -> int:
        """Slots held now (as far as this knows: the actor of one may have stopped since)."""
        return len(self._held)

    async def admit(self, session_id: str, beyond_limit: bool = False) -> bool:
        """Whether ``session_id`` may have an actor: it holds a slot already, or one is
        free, or ``beyond_limit`` (a call that must not wait: it takes a slot anyway)."""
        if beyond_limit:
            self._held.setdefault(session_id, self.clock())
            return True
        if session_id not in self._held and self._recount_due():
            await self._recount()
        if session_id in self._held:
            return True
        if len(self._held) >= self.limit:
            return False
        self._held[session_id] = self.clock()
        return True

    def _recount_due(self) -> bool:
        """Never counted (actors up before this manager started count too), or out of
        slots and not counted within RECHECK_S."""
        never = self._checked == float("-inf")
        return never or (len(self._held) >= self.limit and self.clock() - self._checked >= RECHECK_S)

    async def _recount(self) -> None:
        live = await self.live()
        now = self._checked = self.clock()
        starting = {s: t for s, t in self._held.items() if now - t < STARTING_S}
        self._held = {s: self._held.get(s, now) for s in live} | starting
