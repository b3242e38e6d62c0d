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

from ..security.tenancy import DEDICATED_SUFFIX, tag_of

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


ALL_LIMIT = "NEXUS_MAX_DEDICATED_SESSIONS"
TENANT_LIMIT = "NEXUS_MAX_DEDICATED_SESSIONS_PER_TENANT"


class DedicatedSlots:
    """Slots for dedicated session actors, at most ``limit`` held at once, and at most
    ``per_tenant`` of them by one tenant's sessions (when set: else one tenant could take
    them all, and no other tenant could start a dedicated session).

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
        per_tenant: int | None = None,
    ) -> None:
        self.limit, self.live, self.clock, self.per_tenant = limit, live, clock, per_tenant
        self._held: dict[str, float] = {}  # session id -> when its slot was given out
        self._checked = float("-inf")

    @property
    def held(self) -> int:
        """Slots held now (as far as this knows: the actor of one may have stopped since)."""
        return len(self._held)

    async def admit(self, session_id: str, beyond_limit: bool = False) -> str | None:
        """None when ``session_id`` may have an actor: it holds a slot already, or one is
        free, or ``beyond_limit`` (a call that must not wait: it takes a slot anyway).
        Else the setting whose limit it reached (ALL_LIMIT or TENANT_LIMIT)."""
        if beyond_limit:
            self._held.setdefault(session_id, self.clock())
            return None
        if session_id not in self._held and self._recount_due(session_id):
            await self._recount()
        if session_id in self._held:
            return None
        refusal = self._full(session_id)
        if refusal is None:
            self._held[session_id] = self.clock()
        return refusal

    def _full(self, session_id: str) -> str | None:
        """The limit that a new slot for ``session_id`` would pass, if any."""
        if len(self._held) >= self.limit:
            return ALL_LIMIT
        if self.per_tenant is not None and self._tenant_held(tag_of(session_id)) >= self.per_tenant:
            return TENANT_LIMIT
        return None

    def _tenant_held(self, tag: str) -> int:
        return sum(1 for held in self._held if tag_of(held) == tag)

    def _recount_due(self, session_id: str) -> bool:
        """Never counted (actors up before this manager started count too), or out of
        slots (for this session's tenant) and not counted within RECHECK_S."""
        if self._checked == float("-inf"):
            return True
        return self._full(session_id) is not None and self.clock() - self._checked >= RECHECK_S

    async def _recount(self) -> None:
        live = await self.live()
        now = self._checked = self.clock()
        starting = {s: t for s, t in self._held.items() if now - t < STARTING_S}
        self._held = {s: self._held.get(s, now) for s in live} | starting
