"""Events appended in the open transaction, written together just before it commits.

A durable run appends six events in three commits, and each one written with its own
``INSERT`` cost more than the row itself (a statement, and a release and re-acquisition of
the GIL that the host's event loop competes for). Held here, a commit's events go in with
a few multi-row statements instead (``Backend.insert_rows``).

Each event gets its sequence number when it is appended (the log's hint + 1, see
event_seqs.py); the flush checks it. When another connection appended to the same log
meanwhile, a statement violates the log's key and inserts nothing; from that event on,
the events are inserted one at a time and each taken seq is replaced by ``MAX(seq) + 1``
(the event dicts are updated in place: nobody sees them before the commit). Anything
that reads the events table flushes first, so a transaction always reads its own events.
"""

from __future__ import annotations

from typing import Any

from .backends import Backend
from .event_seqs import EventSeqs, LogKey

COLUMNS = "scope, scope_id, seq, type, data, created_at"
INSERT_HEAD = f"INSERT INTO events ({COLUMNS}) VALUES "
INSERT_AT = f"INSERT INTO events ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (scope, scope_id, seq) DO NOTHING"
INSERT_AFTER_LAST = (
    f"INSERT INTO events ({COLUMNS}) SELECT ?, ?, COALESCE(MAX(seq), 0) + 1, ?, ?, ?"
    " FROM events WHERE scope = ? AND scope_id = ? RETURNING seq"
)
LAST_SEQ = "SELECT COALESCE(MAX(seq), 0) FROM events WHERE scope = ? AND scope_id = ?"

# An events row: (scope, scope_id, seq, type, data as JSON, created_at).
_Row = tuple[str, str, int, str, str, float]


class PendingEvents:
    """The open transaction's events, not yet written (one per store connection)."""

    def __init__(self, backend: Backend, seqs: EventSeqs, closing: frozenset[str]) -> None:
        self.backend, self.seqs, self.closing = backend, seqs, closing
        self._rows: list[_Row] = []
        self._events: list[dict[str, Any]] = []

    def add(self, event: dict[str, Any], scope: str, scope_id: str, text: str) -> None:
        """Give ``event`` the next seq of its log and hold it for the flush."""
        key = (scope, scope_id)
        hint = self.seqs.hint(key)
        if hint is None:
            hint = self.last_seq(scope, scope_id)
        seq = event["seq"] = hint + 1
        self._rows.append((scope, scope_id, seq, event["type"], text, event["created_at"]))
        self._events.append(event)
        self._note(key, event["type"], seq)

    def last_seq(self, scope: str, scope_id: str) -> int:
        """The log's last seq in the database, held events included."""
        self.flush()
        return int(self.backend.execute(LAST_SEQ, (scope, scope_id))[0][0])

    def flush(self) -> None:
        """Write the held events (inside the open transaction)."""
        if not self._rows:
            return
        rows, events = self._rows, self._events
        self._rows, self._events = [], []
        inserted = self.backend.insert_rows(INSERT_HEAD, rows)
        if inserted < len(rows):
            self._insert_one_by_one(rows[inserted:], events[inserted:])

    def drop(self) -> None:
        """Forget the held events (their transaction or savepoint rolled back)."""
        self._rows, self._events = [], []

    def _insert_one_by_one(self, rows: list[_Row], events: list[dict[str, Any]]) -> None:
        moved: set[LogKey] = set()  # logs another connection appended to: their seqs are taken
        for row, event in zip(rows, events, strict=True):
            scope, scope_id, seq, event_type, text, now = row
            key = (scope, scope_id)
            if key not in moved and self.backend.changes(INSERT_AT, row):
                continue
            moved.add(key)
            taken = self.backend.execute(INSERT_AFTER_LAST, (scope, scope_id, event_type, text, now, scope, scope_id))
            event["seq"] = int(taken[0][0])
            self._note(key, event_type, event["seq"])

    def _note(self, key: LogKey, event_type: str, seq: int) -> None:
        if event_type in self.closing:
            self.seqs.forget(key)  # the log is closed: no more appends to save
        else:
            self.seqs.wrote(key, seq)
