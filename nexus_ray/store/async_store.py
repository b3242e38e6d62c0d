"""Store calls from async code, with group commit.

Every call runs on one dedicated thread (the event loop never waits on the database).
Calls that queue up while a transaction runs are executed together in the next one, so
under load many runs' checkpoints share one commit. A caller's future resolves only after
the commit that made its write durable. Events the store appended are handed to
``on_events`` on the caller's event loop after their commit, in commit order (so a
subscriber never sees an event the store could still lose).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import StoreUnavailableError
from .backends import CommitUnknownError
from .store import Store

logger = logging.getLogger("nexus_ray.store")
MAX_GROUP = 256
REPORT_EVERY_S = 5.0
# (the store method with its arguments, the caller's loop, its future or None when nobody
# waits, the run or other owner whose writes these are, see call_for)
_Call = tuple[Callable[[], Any], asyncio.AbstractEventLoop | None, "asyncio.Future[Any] | None", str | None]
EventsCallback = Callable[[list[dict[str, Any]]], None]


class AsyncStore:
    """Async facade of the :class:`Store` that ``factory`` builds on the store thread."""

    def __init__(self, factory: Callable[[], Store], on_events: EventsCallback | None = None) -> None:
        self.on_events = on_events
        self._unreported, self._reported_at = 0, -math.inf
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._lost: set[str] = set()  # owners with a write nobody waited for that failed (store thread)
        ready: queue.SimpleQueue[BaseException | Store] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, args=(factory, ready), name="nexus-store", daemon=True)
        self._thread.start()
        opened = ready.get()
        if isinstance(opened, BaseException):
            raise opened
        self.store: Store = opened

    async def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """``await store.call("get_run", run_id)``: run ``Store.method`` on the store thread."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put((functools.partial(getattr(self.store, method), *args, **kwargs), loop, future, None))
        return await future

    async def call_for(self, owner: str, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """:meth:`call` for a write of ``owner`` (a run) that must not succeed while an
        earlier write of it sent with :meth:`submit_for` was lost: then this call fails
        instead, once, with a StoreUnavailableError (the owner reloads what the store has)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put((functools.partial(getattr(self.store, method), *args, **kwargs), loop, future, owner))
        return await future

    async def drain(self, method: str, /, *args: Any, chunk: int) -> int:
        """Call ``method(*args, chunk)``, one transaction each, until it does fewer than
        ``chunk`` rows (a delete in chunks, so other writers wait for one chunk at most);
        the rows done in all."""
        total = 0
        while True:
            done: int = await self.call(method, *args, chunk)
            total += done
            if done < chunk:
                return total

    def submit(self, method: str, /, *args: Any, **kwargs: Any) -> None:
        """Queue a write without waiting for it (from the event loop). Calls commit in
        order, so it is durable no later than any call queued after it; a failure is logged."""
        loop = asyncio.get_running_loop()
        self._queue.put((functools.partial(getattr(self.store, method), *args, **kwargs), loop, None, None))

    def submit_for(self, owner: str, method: str, /, *args: Any, **kwargs: Any) -> None:
        """:meth:`submit` a write of ``owner``; if it fails, ``owner``'s next
        :meth:`call_for` fails too (so a run is not stored finished without it)."""
        loop = asyncio.get_running_loop()
        self._queue.put((functools.partial(getattr(self.store, method), *args, **kwargs), loop, None, owner))

    def close(self) -> None:
        """Finish queued calls, close the connection, stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _serve(self, factory: Callable[[], Store], ready: queue.SimpleQueue[BaseException | Store]) -> None:
        try:
            store = factory()
        except BaseException as exc:  # reported to the constructor
            ready.put(exc)
            return
        ready.put(store)
        while True:
            first = self._queue.get()
            if first is None:
                break
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)
                    break
                group.append(item)
            outcomes, events = self._run_group(store, group)
            self._settle(outcomes, events)
        store.close()

    def _run_group(
        self, store: Store, group: list[_Call]
    ) -> tuple[list[tuple[_Call, bool, Any]], list[dict[str, Any]]]:
        if self._lost and any(call[2] is not None and call[3] in self._lost for call in group):
            return self._run_each_alone(store, group)  # (rare) an owner's awaited call is refused
        store.appended.clear()
        try:
            with store.transaction(write=_writes(group)):
                results = [call[0]() for call in group]
            return [(call, True, r) for call, r in zip(group, results, strict=True)], list(store.appended)
        except CommitUnknownError as exc:
            # Not tried again call by call: the group may be stored, and its writes made
            # twice would duplicate events or fail as conflicts (a session "changed elsewhere").
            for call in group:
                self._note_if_lost(call)
            return [(call, False, exc) for call in group], []
        except Exception:
            # One call failed and took the shared transaction with it: run each alone.
            return self._run_each_alone(store, group)

    def _run_each_alone(
        self, store: Store, group: list[_Call]
    ) -> tuple[list[tuple[_Call, bool, Any]], list[dict[str, Any]]]:
        """Each call in a transaction of its own; an awaited call of an owner whose write
        nobody waited for was lost before it (in an earlier group or this one) is refused."""
        outcomes: list[tuple[_Call, bool, Any]] = []
        events: list[dict[str, Any]] = []
        for call in group:
            refusal = self._refusal(call)
            if refusal is not None:
                outcomes.append((call, False, refusal))
                continue
            store.appended.clear()
            try:
                with store.transaction(write=_writes([call])):
                    result = call[0]()
            except Exception as exc:  # the call, or its commit (where held events are written)
                outcomes.append((call, False, exc))
                self._note_if_lost(call)
            else:
                outcomes.append((call, True, result))
                events.extend(store.appended)
        return outcomes, events

    def _note_if_lost(self, call: _Call) -> None:
        """A failed call: when nobody waited for it, its owner's next awaited call fails."""
        if call[2] is None and call[3] is not None:
            self._lost.add(call[3])

    def _refusal(self, call: _Call) -> StoreUnavailableError | None:
        """The error for an awaited call of an owner with a lost write (once), else None."""
        owner = call[3]
        if owner is None or call[2] is None or owner not in self._lost:
            return None
        self._lost.discard(owner)
        return StoreUnavailableError(f"The store failed: an earlier write of {owner} was lost.", owner=owner)

    def _settle(self, outcomes: list[tuple[_Call, bool, Any]], events: list[dict[str, Any]]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        failures = []
        for (fn, loop, future, _), ok, value in outcomes:
            if not ok and (future is None or _is_store_error(value)):  # not a caller's own mistake
                failures.append((fn, value))
            if loop is not None:
                by_loop.setdefault(loop, [])
            if future is None:  # submitted without waiting
                continue
            by_loop.setdefault(loop, []).append((future, ok, value))  # type: ignore[arg-type]
        if failures:
            self._report(failures)
        publish = self.on_events if events else None
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve, items, publish, events)
            except RuntimeError:  # the caller's loop is closed: nobody waits any more
                logger.debug("store result for a closed event loop dropped")
            publish = None  # events go to one loop (a service has one)

    def _report(self, failures: list[tuple[Callable[[], Any], BaseException]]) -> None:
        """Log failed writes and database errors, at most once every REPORT_EVERY_S: a
        full disk fails every call, and a line per call would flood the log."""
        self._unreported += len(failures)
        now = time.monotonic()
        if now - self._reported_at < REPORT_EVERY_S:
            return
        fn, error = failures[0]
        name = getattr(getattr(fn, "func", fn), "__name__", fn)
        logger.error("%d store call(s) failed since the last report, e.g. %s: %r", self._unreported, name, error)
        self._unreported, self._reported_at = 0, now


# Store methods that only read: a group of these alone needs no write lock.
READS = frozenset(
    {
        "get_run",
        "get_session",
        "session_version",
        "list_runs",
        "list_sessions",
        "list_events",
        "last_event_seq",
        "api_keys",
        "api_keys_fingerprint",
        "list_audit",
        "ping",
        "schema_version",
    }
)


def _writes(group: list[_Call]) -> bool:
    """Whether a group may write (a read first and a write later must lock at BEGIN)."""
    return any(getattr(getattr(call[0], "func", call[0]), "__name__", "") not in READS for call in group)


def _resolve(
    items: list[tuple[asyncio.Future[Any], bool, Any]], publish: EventsCallback | None, events: list[dict[str, Any]]
) -> None:
    if publish is not None:  # first, so a caller that resumes finds its events published
        try:
            publish(events)
        except Exception:
            logger.exception("publishing %d events failed", len(events))
    for future, ok, value in items:
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(store_failure(value))


def store_failure(exc: BaseException) -> BaseException:
    """What a caller gets for a failed call: a database error (disk full, connection lost)
    becomes a StoreUnavailableError naming it (503: retry later; nothing was written),
    chained to the original; any other error as it is."""
    if not _is_database_error(exc):
        return exc
    error = StoreUnavailableError(f"The store failed: {str(exc).strip()}", store_error=type(exc).__name__)
    error.__cause__ = exc
    return error


def _is_store_error(exc: BaseException) -> bool:
    return _is_database_error(exc) or isinstance(exc, StoreUnavailableError)


def _is_database_error(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.Error | CommitUnknownError) or type(exc).__module__.startswith("psycopg")
