"""Schema 6 drops ``node_checkpoints``: a step of that migration first writes the node
states it holds into their runs' event logs, where the store reads node states now.

Runs written before run logs had node events (by releases of schema 4 and older) have
their node states only in that table. Dropped with it, an unfinished run resumed after
the upgrade ran its completed nodes again, and a finished run reported no nodes. A run whose log has
a node event already had every state written there too (in the same transaction), so
only runs without one are carried over.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..workflow import NodeStatus
from ..workflow.events import node_event
from .pending_events import INSERT_HEAD, LAST_SEQ, NODE_EVENT_TYPES

if TYPE_CHECKING:
    from .backends import Backend

_CHECKPOINTS = (
    "SELECT c.run_id, c.node_id, c.status, c.outputs, c.error, c.reason, c.started_at, c.duration_ms, r.created_at"
    " FROM node_checkpoints c LEFT JOIN runs r ON r.run_id = c.run_id"
    " WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.scope = 'run' AND e.scope_id = c.run_id"
    f" AND e.type IN ({NODE_EVENT_TYPES}))"
    " ORDER BY c.run_id, COALESCE(c.started_at, r.created_at, 0), c.node_id"
)
# A node cancelled in flight had started; a pending one had not (it has no event).
_STATUS = {"cancelled": NodeStatus.RUNNING, "pending": None}


def node_checkpoints_to_events(backend: Backend) -> None:
    """Append each carried-over run's node states to its log: a started node's
    ``node.started`` (at its start), then its end (completed, failed: at its start plus
    its duration; skipped), as the host would have written them."""
    rows: list[tuple[Any, ...]] = []
    last_seq: dict[str, int] = {}
    for run_id, node_id, status, outputs, error, reason, started_at, duration_ms, run_created in backend.execute(
        _CHECKPOINTS
    ):
        if run_id not in last_seq:
            last_seq[run_id] = backend.execute(LAST_SEQ, ("run", run_id))[0][0]
        for event_type, data, at in _node_events(
            node_id, status, outputs, error, reason, started_at, duration_ms, run_created
        ):
            last_seq[run_id] += 1
            rows.append(("run", run_id, last_seq[run_id], event_type, json.dumps(data), at))
    if rows and backend.insert_rows(INSERT_HEAD, rows) != len(rows):  # cannot happen: numbered after each log's last
        raise RuntimeError("Carrying node checkpoints over to their runs' logs collided with existing events.")


def _node_events(
    node_id: str,
    status: str,
    outputs: str | None,
    error: str | None,
    reason: str | None,
    started_at: float | None,
    duration_ms: float | None,
    run_created: float | None,
) -> list[tuple[str, dict[str, Any], float]]:
    """(type, data, created_at) of the events that give ``node_id`` this state."""
    state = _STATUS.get(status, NodeStatus(status))
    if state is None:
        return []
    start = started_at if started_at is not None else (run_created or 0.0)
    events = []
    if state != NodeStatus.SKIPPED:
        events.append((*node_event(node_id, NodeStatus.RUNNING), start))
    if state != NodeStatus.RUNNING:
        end = start + (duration_ms or 0.0) / 1000
        loaded_outputs, loaded_error = (json.loads(text) if text else None for text in (outputs, error))
        ended = node_event(
            node_id, state, outputs=loaded_outputs, error=loaded_error, reason=reason, duration_ms=duration_ms
        )
        events.append((*ended, end))
    return events
