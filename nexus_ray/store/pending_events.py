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

from ..workflow.events import NODE_STATUS_OF_EVENT
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
NODE_EVENT_TYPES = ", ".join(f"'{t}'" for t in NODE_STATUS_OF_EVENT)  # as SQL literals, for "type IN (...)"

# A held event: its dict (seq, type and created_at are read from it), scope, id and data as JSON.
_Held = tuple[dict[str, Any], str, str, str]


class PendingEvents:
    """The open transaction's events, not yet written (one per store connection)."""

    def __init__(self, backend: Backend, seqs: EventSeqs, closing: frozenset[str]) -> None:
        self.backend, self.seqs, self.closing = backend, seqs, closing
        self._held: list[_Held] = []

    def add(self, event: dict[str, Any], scope: str, scope_id: str, text: str) -> None:
        """Give ``event`` the next seq of its log and hold it for the flush."""
        key = (scope, scope_id)
        hint = self.seqs.hint(key)
        if hint is None:
            hint = self.last_seq(scope, scope_id)
        event["seq"] = hint + 1
        self._held.append((event, scope, scope_id, text))
        self._note(key, event)

    def last_seq(self, scope: str, scope_id: str) -> int:
        """The log's last seq in the database, held events included."""
        self.flush()
        return int(self.backend.execute(LAST_SEQ, (scope, scope_id))[0][0])

    def flush(self) -> None:
        """Write the held events (inside the open transaction)."""
        if not self._held:
            return
        held, self._held = self._held, []
        rows = [(scope, scope_id, e["seq"], e["type"], text, e["created_at"]) for e, scope, scope_id, text in held]
        inserted = self.backend.insert_rows(INSERT_HEAD, rows)
        if inserted < len(rows):
            self._insert_one_by_one(held[inserted:])

    def drop(self) -> None:
        """Forget the held events (their transaction or savepoint rolled back)."""
        self._held = []

    def _insert_one_by_one(self, held: list[_Held]) -> None:
        moved: set[LogKey] = set()  # logs another connection appended to: their seqs are taken
        for event, scope, scope_id, text in held:
            key, event_type, now = (scope, scope_id), event["type"], event["created_at"]
            if key not in moved and self.backend.changes(INSERT_AT, (*key, event["seq"], event_type, text, now)):
                continue
            moved.add(key)
            taken = self.backend.execute(INSERT_AFTER_LAST, (*key, event_type, text, now, *key))
            event["seq"] = int(taken[0][0])
            self._note(key, event)

    def _note(self, key: LogKey, event: dict[str, Any]) -> None:
        if event["type"] in self.closing:
            self.seqs.forget(key)  # the log is closed: no more appends to save
        else:
            self.seqs.wrote(key, event["seq"])
