"""Recent events of the runs or sessions a host serves, and long-poll waits on them.

A host publishes each event after its commit (see AsyncStore), so what a subscriber reads
here is in the store too. A subscriber asks for the events after its cursor: answered at
once from memory when there are some, else it waits (no polling) until one is published
or the timeout passes. Cursors older than what memory holds are read from the store.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

KEEP_EVENTS = 512  # per log, in memory; older ones are read from the store
IDLE_S = 300.0  # a log not touched for this long is dropped from memory

Loader = Callable[[str, int], Awaitable[list[dict[str, Any]]]]


@dataclass
class _Log:
    """The recent events of one run or session (seq ascending) and who waits for more."""

    events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEEP_EVENTS))
    last_seq: int = 0
    closed: bool = False
    changed: asyncio.Event | None = None  # made by the first waiter, set by the next publish
    touched: float = field(default_factory=time.monotonic)

    def wake(self) -> None:
        if self.changed is not None:
            self.changed.set()
            self.changed = None

    def after(self, seq: int) -> list[dict[str, Any]]:
        return [e for e in self.events if e["seq"] > seq]

    def covers(self, seq: int) -> bool:
        """True when every event after ``seq`` is in memory."""
        first = self.events[0]["seq"] if self.events else self.last_seq + 1
        return first <= seq + 1


@dataclass(frozen=True)
class EventBatch:
    """What a subscriber gets: events after its cursor and whether the log has ended (a
    finished run, a deleted session): then nothing more will come."""

    events: list[dict[str, Any]]
    closed: bool

    def to_wire(self) -> tuple[list[dict[str, Any]], bool]:
        return self.events, self.closed


class EventFeed:
    """The in-memory side of many event logs, keyed by run or session id.

    Args:
        id_key: The key naming a log in an event ("run_id" or "session_id").
        is_terminal: Whether an event ends its log.
        erase_on_end: Forget a log's earlier events when its terminal event arrives (a
            gone session's log is erased in the store but for that event; memory too).
    """

    def __init__(self, id_key: str, is_terminal: Callable[[dict[str, Any]], bool], erase_on_end: bool = False) -> None:
        self.id_key, self.is_terminal, self.erase_on_end = id_key, is_terminal, erase_on_end
        self._logs: dict[str, _Log] = {}

    def publish(self, events: list[dict[str, Any]]) -> None:
        """Add committed events (in seq order per log) of tracked logs and wake who waits
        for them (events of other logs are in the store only)."""
        for event in events:
            log = self._logs.get(event.get(self.id_key))  # type: ignore[arg-type]
            if log is None:
                continue
            if event["seq"] <= log.last_seq:
                continue  # at-least-once upstream: never publish a seq twice
            terminal = self.is_terminal(event)
            if (terminal and self.erase_on_end) or event["seq"] > log.last_seq + 1:
                # A gap: another writer of the store (a second cluster on it) numbered the
                # events between, so memory no longer holds every event after a cursor
                # before this one, and such cursors are read from the store (covers).
                log.events.clear()
            log.events.append(event)
            log.last_seq, log.touched = event["seq"], time.monotonic()
            log.closed = log.closed or terminal
            log.wake()

    def append(self, log_id: str, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        """Number and publish an event of a tracked log (for hosts without a store)."""
        log = self._logs.setdefault(log_id, _Log())
        event = {"seq": log.last_seq + 1, "type": event_type, "data": data, "created_at": time.time()}
        event[self.id_key] = log_id
        self.publish([event])
        return event

    def track(self, log_id: str, last_seq: int = 0) -> None:
        """Hold ``log_id`` in memory from ``last_seq`` on (its host writes all its events,
        so waits on it need no store reads)."""
        log = self._logs.setdefault(log_id, _Log())
        log.last_seq = max(log.last_seq, last_seq)
        log.touched = time.monotonic()

    def wake(self, log_id: str) -> None:
        """Wake who waits on ``log_id`` without an event (they look again at their state)."""
        log = self._logs.get(log_id)
        if log is not None:
            log.wake()

    def forget(self, log_id: str) -> None:
        """Stop holding ``log_id`` (its events stay in the store)."""
        self._logs.pop(log_id, None)

    def forget_unless(self, keep: Callable[[str], bool]) -> int:
        """Stop holding every log but those ``keep`` names, waking who waits on them (they
        find nothing new and ask again, elsewhere); how many were dropped."""
        dropped = [log_id for log_id in self._logs if not keep(log_id)]
        for log_id in dropped:
            self._logs.pop(log_id).wake()
        return len(dropped)

    def last_seq(self, log_id: str) -> int:
        """The newest sequence number published for ``log_id`` (0 when none or untracked)."""
        log = self._logs.get(log_id)
        return 0 if log is None else log.last_seq

    def is_tracked(self, log_id: str) -> bool:
        """True when every new event of ``log_id`` will be published here."""
        return log_id in self._logs

    async def wait(self, log_id: str, after: int, timeout_s: float, load: Loader) -> EventBatch | None:
        """Events of ``log_id`` after ``after``: at once when there are some, else the ones
        published within ``timeout_s`` (possibly none). ``load(log_id, after)`` reads the
        store for cursors older than memory holds and for logs not tracked here; None when
        the log is not tracked and the store has nothing after ``after``."""
        log = self._logs.get(log_id)
        if log is None or not log.covers(after):
            stored = await load(log_id, after)
            log = self._logs.get(log_id)
            if stored:
                return self.stored_batch(stored)
            if log is None:
                return None
        log.touched = time.monotonic()
        ready = log.after(after)
        if ready or log.closed:
            return EventBatch(ready, log.closed)
        if log.changed is None:
            log.changed = asyncio.Event()
        changed = log.changed
        try:
            await asyncio.wait_for(changed.wait(), timeout_s)
        except TimeoutError:
            return EventBatch([], False)
        if not log.covers(after) and not log.closed:  # what woke it came after a gap
            stored = await load(log_id, after)
            return self.stored_batch(stored)
        return EventBatch(log.after(after), log.closed)

    def stored_batch(self, events: list[dict[str, Any]]) -> EventBatch:
        """A batch of events read from the store: closed when the last one ends its log."""
        return EventBatch(events, bool(events) and self.is_terminal(events[-1]))

    def drop_idle(self, idle_s: float = IDLE_S, keep: Callable[[str], bool] = lambda _: False) -> int:
        """Forget logs untouched for ``idle_s`` (unless ``keep(log_id)``); how many."""
        cutoff = time.monotonic() - idle_s
        idle = [k for k, log in self._logs.items() if log.touched <= cutoff and not keep(k)]
        for log_id in idle:
            del self._logs[log_id]
        return len(idle)
