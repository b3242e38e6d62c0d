"""Tell when a host's event loop is blocked, and by what.

An async node that calls blocking code (``time.sleep``, ``requests.get``, a CPU-bound
loop) holds the whole host: every other run on it stops, and so does lease renewal, so
after ``NEXUS_LEASE_S`` another host adopts its runs and they run twice. Nothing else
says why. A thread of its own notices that the loop has not ticked for a while and logs
the node and the line of code holding it, once per stall, and how long the stall lasted.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import sysconfig
import threading
import time
from pathlib import Path
from types import FrameType

from ..workflow.stopping import NODE_TASK_PREFIX

logger = logging.getLogger("nexus_ray.runtime")
# Python's own modules and installed packages (nexus_ray among them): not the app's code.
LIBRARY_PATHS = tuple({sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}) + (
    str(Path(__file__).resolve().parents[1]),
)


class LoopWatch:
    """Watches one event loop from a daemon thread.

    Args:
        loop: The loop to watch (its ticks are scheduled with ``call_soon_threadsafe``).
        host_id: Named in the warnings.
        blocked_s: A loop that has not ticked for this long is blocked.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, host_id: str, blocked_s: float = 1.0) -> None:
        self.loop, self.host_id, self.blocked_s = loop, host_id, blocked_s
        self.stalls = 0  # stalls reported so far
        self._tick_every_s = blocked_s / 4
        self._last_tick = time.monotonic()
        self._loop_thread: int | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"{host_id}-loop-watch", daemon=True)

    def start(self) -> None:
        """Start ticking on the loop and watching from the thread."""
        self.loop.call_soon_threadsafe(self._tick)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching."""
        self._stopped.set()

    def _tick(self) -> None:
        self._loop_thread = threading.get_ident()
        self._last_tick = time.monotonic()
        if not self._stopped.is_set():
            self.loop.call_later(self._tick_every_s, self._tick)

    def _watch(self) -> None:
        stalled_since: float | None = None
        while not self._stopped.wait(self._tick_every_s):
            last = self._last_tick
            if time.monotonic() - last < self.blocked_s:
                if stalled_since is not None:
                    logger.warning("%s: its event loop ran again after %.1f s", self.host_id, last - stalled_since)
                    stalled_since = None
                continue
            if stalled_since is None:
                stalled_since = last
                self.stalls += 1
                logger.warning(
                    "%s: its event loop has been blocked for %.1f s%s. Everything this host serves waits, and "
                    "a RunHost's runs are adopted by another host past NEXUS_LEASE_S. Async code must not call "
                    "blocking code: make such a node a plain function (it runs in a thread), or use an async library",
                    self.host_id,
                    time.monotonic() - last,
                    self._blocker(),
                )

    def _blocker(self) -> str:
        """What holds the loop: the node running (when it is one) and the line."""
        task = asyncio.current_task(self.loop)  # read from this thread: good enough for a log line
        name = task.get_name() if task is not None else ""
        by = f" by {name}" if name.startswith(NODE_TASK_PREFIX) else ""
        frame = sys._current_frames().get(self._loop_thread) if self._loop_thread is not None else None
        return by + (describe(frame) if frame is not None else "")


def describe(frame: FrameType) -> str:
    """`` at file:line in function`` of the innermost frame outside Python's and the
    installed packages' code (the app's line), and the innermost one when it differs."""
    innermost, app_frame = frame, None
    outer: FrameType | None = frame
    while outer is not None and app_frame is None:
        if not outer.f_code.co_filename.startswith(LIBRARY_PATHS):
            app_frame = outer
        outer = outer.f_back
    shown = app_frame or innermost
    where = f" at {shown.f_code.co_filename}:{shown.f_lineno} in {shown.f_code.co_name}"
    if shown is not innermost:
        where += f" (inside {innermost.f_code.co_filename}:{innermost.f_lineno})"
    return where
