"""When a call may be one that Ray sends again.

Hosts are Ray actors with ``max_restarts=-1, max_task_retries=-1``: after a host's process
dies, Ray restarts it and sends the new process the calls that were in flight, with the
same arguments. A call that had committed its change before the death comes again; the
host must answer it, not apply it twice. Such calls arrive within moments of the restart,
so a host checks for them only for a while after one (or after sessions moved to it).
"""

from __future__ import annotations

import time

RETRY_WINDOW_S = 60.0  # how long after a restart calls that were in flight may come again


class RetryWindow:
    """Open for a while after a restart: calls that arrive meanwhile may be sent again."""

    def __init__(self) -> None:
        self._until = 0.0  # monotonic time

    def open_for(self, seconds: float = RETRY_WINDOW_S) -> None:
        """Calls in the next ``seconds`` may be ones sent again."""
        self._until = max(self._until, time.monotonic() + seconds)

    @property
    def is_open(self) -> bool:
        """Whether a call arriving now may be one sent again."""
        return time.monotonic() < self._until
