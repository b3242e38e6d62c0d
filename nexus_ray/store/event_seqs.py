"""The last sequence number a store connection wrote per event log: a hint that saves the
``MAX(seq)`` lookup of the next append to that log (about half an append's cost).

Only a hint. An insert at ``hint + 1`` that collides (another process appended to the log
meanwhile) falls back to the lookup, so a hint that is too low costs one try. A hint must
never be too high (that would leave a gap in the log): hints written in a transaction
count only once it commits, and all of a transaction's hints are dropped when it, or a
savepoint in it, rolls back.
"""

from __future__ import annotations

LogKey = tuple[str, str]  # (scope, scope_id)
KEPT = 10_000  # logs remembered; past that the committed hints start over


class EventSeqs:
    """Committed and pending per-log sequence hints of one connection."""

    def __init__(self) -> None:
        self._committed: dict[LogKey, int] = {}
        self._pending: dict[LogKey, int] = {}

    def hint(self, key: LogKey) -> int | None:
        """The last sequence number known for ``key`` (None: look it up)."""
        pending = self._pending.get(key)
        return pending if pending is not None else self._committed.get(key)

    def wrote(self, key: LogKey, seq: int) -> None:
        """The open transaction appended ``seq`` to ``key`` (or created the log: 0)."""
        self._pending[key] = seq

    def forget(self, key: LogKey) -> None:
        """``key`` will see no more appends from here (e.g. its run ended)."""
        self._pending.pop(key, None)
        self._committed.pop(key, None)

    def commit(self) -> None:
        """The open transaction committed: its hints hold."""
        if len(self._committed) + len(self._pending) > KEPT:
            self._committed.clear()
        self._committed.update(self._pending)
        self._pending.clear()

    def rollback(self) -> None:
        """The open transaction (or a savepoint in it) rolled back: drop its hints."""
        self._pending.clear()
