"""Threads for synchronous node code, which nodes that hang cannot use up.

Python cannot stop a thread. A synchronous node given up on (it timed out, or its run was
cancelled, timed out or failed) keeps its thread until its code returns, which for a call
without a timeout to a host that never answers is never. In a fixed pool such threads
add up until no thread is left, and every synchronous node of every run on the host then
waits for ever. Here a thread whose node was given up on stops counting towards the pool's
size, and a new thread takes its place.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

logger = logging.getLogger("nexus_ray.runtime")
T = TypeVar("T")


class _NodeFuture(Future[Any]):
    """A future that tells its pool when the code behind it is given up on while it runs."""

    def __init__(self, pool: NodeThreads) -> None:
        super().__init__()
        self.pool = pool
        self.thread: threading.Thread | None = None  # the thread that took it
        self.finished = False  # its code returned (set under the pool's lock)
        self.given_up = False  # cancelled while its code ran (set under the pool's lock)

    def cancel(self) -> bool:
        if super().cancel():
            return True  # not started: it never will
        self.pool._give_up(self)
        return False


@dataclass(slots=True)
class _Work:
    future: _NodeFuture
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


@dataclass
class _Counts:
    counted: int = 0  # threads that count towards the size: idle, or running code still wanted
    idle: int = 0  # counted threads waiting for work
    queued: int = 0  # work not taken by a thread yet
    threads: set[threading.Thread] = field(default_factory=set)
    left_behind: set[threading.Thread] = field(default_factory=set)  # running code given up on


class NodeThreads(Executor):
    """A thread pool for synchronous node code.

    Args:
        size: Threads that run node code at once.
        name: Prefix of the threads' names.
        spare: At most this many threads are added in place of threads held by code given
            up on (default: 4 x ``size``); beyond that new work waits for a thread.
    """

    def __init__(self, size: int, name: str = "node", spare: int | None = None) -> None:
        self.size = size
        self.spare = 4 * size if spare is None else spare
        self.name = name
        self._queue: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._counts = _Counts()
        self._shut = False
        self._warned = False
        self._started = 0

    @property
    def left_behind(self) -> int:
        """Threads still running code that was given up on."""
        return len(self._counts.left_behind)

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` in a node thread."""
        future = _NodeFuture(self)
        with self._lock:
            if self._shut:
                raise RuntimeError("cannot run node code after the host's node threads were shut down")
            self._counts.queued += 1
            self._queue.put(_Work(future, fn, args, kwargs))
            self._add_thread_if_needed()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the threads once the work queued has run (with ``cancel_futures``, that
        work is cancelled instead). A thread running code that was given up on ends when
        that code returns; threads are daemons, so it never holds up the process's exit."""
        with self._lock:
            self._shut = True
            while cancel_futures:
                try:
                    work = self._queue.get_nowait()
                except queue.Empty:
                    break
                if work is not None:
                    self._counts.queued -= 1
                    work.future.cancel()
            waited_for = self._counts.threads - self._counts.left_behind - {threading.current_thread()}
            for _ in range(self._counts.counted):
                self._queue.put(None)
        if wait:
            for thread in waited_for:
                thread.join()

    def _add_thread_if_needed(self) -> None:
        """With the lock held: start a thread when queued work has no idle thread to take
        it and fewer than ``size`` threads count."""
        counts = self._counts
        if counts.queued <= counts.idle or counts.counted >= self.size:
            return
        if len(counts.left_behind) > self.spare:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "%d node threads are held by synchronous nodes that timed out or were cancelled "
                    "(their code still runs); new node code waits for one of %d threads",
                    len(counts.left_behind),
                    self.size,
                )
            return
        counts.counted += 1
        self._started += 1
        thread = threading.Thread(target=self._serve, name=f"{self.name}-{self._started}", daemon=True)
        counts.threads.add(thread)
        thread.start()

    def _serve(self) -> None:
        current, counts = threading.current_thread(), self._counts
        with self._lock:
            counts.idle += 1
        while True:
            work = self._queue.get()
            with self._lock:
                counts.idle -= 1
                if work is None:
                    self._leave()
                    return
                counts.queued -= 1
                work.future.thread = current
            if not work.future.set_running_or_notify_cancel():
                with self._lock:
                    counts.idle += 1
                continue
            if not self._run(work, current):
                return

    def _run(self, work: _Work, current: threading.Thread) -> bool:
        """Run ``work`` and hand its outcome over; whether this thread takes more work (a
        thread left behind counts again if the pool is short of threads, else it ends)."""
        result, error = None, None
        try:
            result = work.fn(*work.args, **work.kwargs)
        except BaseException as exc:  # handed to whoever awaits the future
            error = exc
        with self._lock:
            work.future.finished = True
            go_on = not work.future.given_up or self._back_from_given_up(current)
            if go_on:
                self._counts.idle += 1
        if error is not None:
            work.future.set_exception(error)
        else:
            work.future.set_result(result)
        return go_on

    def _back_from_given_up(self, current: threading.Thread) -> bool:
        """With the lock held: a thread whose code was given up on is free again; it
        counts again if the pool is short of threads, else it ends."""
        self._counts.left_behind.discard(current)
        self._warned = False
        if self._shut or self._counts.counted >= self.size:
            self._counts.threads.discard(current)
            return False
        self._counts.counted += 1
        return True

    def _leave(self) -> None:
        self._counts.counted -= 1
        self._counts.threads.discard(threading.current_thread())

    def _give_up(self, future: _NodeFuture) -> None:
        """The awaiting side gave up on ``future`` while its code runs: its thread stops
        counting, and another may take its place."""
        with self._lock:
            if future.finished or future.given_up:
                return
            assert future.thread is not None  # it runs, so a thread took it
            future.given_up = True
            self._counts.counted -= 1
            self._counts.left_behind.add(future.thread)
            self._add_thread_if_needed()
