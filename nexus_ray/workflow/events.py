"""The events a run produces, named and shaped in one place (the store writes them with
each change; a host without a store publishes the same ones from memory)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import InvalidRequestError
from ..json_form import as_stored
from ..stored_text import storable
from .result import NodeStatus, RunStatus

RUN_TERMINAL = frozenset({"run.completed", "run.failed", "run.cancelled"})
# A session's log ends when the session is gone; the end is all that is left of it.
SESSION_TERMINAL = frozenset({"session.deleted", "session.expired"})

_NODE_EVENT = {
    NodeStatus.RUNNING: "node.started",
    NodeStatus.COMPLETED: "node.completed",
    NodeStatus.FAILED: "node.failed",
    NodeStatus.SKIPPED: "node.skipped",
}
# A node's state is its last event of these types (see node_event; the store reads them back).
NODE_STATUS_OF_EVENT = {event_type: status for status, event_type in _NODE_EVENT.items()}


def node_event(
    node_id: str,
    status: NodeStatus,
    *,
    outputs: dict[str, Any] | None = None,
    error: dict[str, Any] | None = None,
    reason: str | None = None,
    duration_ms: float | None = None,
) -> tuple[str, dict[str, Any]]:
    """(type, data) of a node state change: node.started / completed (with outputs and
    duration) / failed (with the error) / skipped (with the reason)."""
    data: dict[str, Any] = {"node": node_id}
    if status == NodeStatus.COMPLETED:
        data |= {"outputs": outputs or {}, "duration_ms": duration_ms}
    elif status == NodeStatus.FAILED:
        data["error"] = error
    elif status == NodeStatus.SKIPPED:
        data["reason"] = reason
    return _NODE_EVENT[status], data


def run_started(
    workflow: str,
    session_id: str | None,
    session_version: int | None = None,
    definition: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The data of a run's run.started event; a run in a session also records the version
    of the state it read (its write-back is refused if the session changed since), and a
    stored run its nodes' definition digests (a resumed run checks its completed nodes)."""
    data: dict[str, Any] = {"workflow": workflow, "session_id": session_id}
    if session_id is not None and session_version is not None:
        data["session_version"] = session_version
    if definition is not None:
        data["definition"] = dict(definition)
    return data


def run_end_event(
    status: RunStatus, outputs: dict[str, Any] | None, error: dict[str, Any] | None
) -> tuple[str, dict[str, Any]]:
    """(type, data) of a run's end: run.completed (outputs), run.failed (error, outputs so
    far) or run.cancelled."""
    if status == RunStatus.COMPLETED:
        return "run.completed", {"status": status.value, "outputs": outputs or {}}
    if status == RunStatus.CANCELLED:
        return "run.cancelled", {"status": status.value}
    return "run.failed", {"status": status.value, "error": error, "outputs": outputs or {}}


RESERVED_EVENT_PREFIXES = ("session.", "run.", "node.")


def check_custom_event(event_type: Any, data: Any) -> dict[str, Any]:
    """Refuse a custom event whose type is empty, too long or reserved, or whose data is
    not a JSON object; the data as the store keeps it (see json_form.as_stored), which is
    what live followers get too. Refused here, by name: data the store cannot write used
    to fail the write after the node, and its run was resumed, and its node run again,
    until the caller got a 503."""
    if not isinstance(event_type, str) or not 0 < len(event_type) <= 200 or not storable(event_type):
        raise InvalidRequestError(
            f"An event type must be a string of 1-200 characters without NUL or lone surrogates, got {event_type!r}."
        )
    if event_type.startswith(RESERVED_EVENT_PREFIXES):
        raise InvalidRequestError(
            f"Event type {event_type!r} uses a reserved prefix {RESERVED_EVENT_PREFIXES}; choose another name.",
            event_type=event_type,
        )
    if not isinstance(data, dict):
        raise InvalidRequestError("Event data must be a JSON object.", event_type=event_type)
    return as_stored(data, f"The data of event {event_type!r}")
