"""The arguments every listing takes (a page size, a cursor, a status filter, an event
sequence number), checked the same way on every channel before any actor call. A bad one
is refused by name: never read as "no limit" (SQLite's ``LIMIT -1``), "no filter" or
"from the start", which would answer a mistake with a plausible wrong page.
"""

from __future__ import annotations

from ..checks import whole_number
from ..errors import InvalidRequestError
from ..security.tenancy import AUDIT_ID, RUN_ID, SESSION_ID
from ..workflow import RunStatus

PAGE_MAX = 500  # runs and sessions per page
EVENTS_MAX = 1000  # events or audit entries per page

_CURSORS = {"run": RUN_ID, "session": SESSION_ID, "audit entry": AUDIT_ID}


def page_limit(limit: object, most: int = PAGE_MAX) -> int:
    """``limit`` when it is a whole number from 1 to ``most``."""
    return whole_number(limit, "limit", low=1, high=most, hint="; page on with the cursor", field="limit")


def page_cursor(cursor: object, kind: str) -> str | None:
    """``cursor`` when it is None or a ``kind`` id ("run", "session", "audit entry"): the
    ``next_cursor`` of a previous page, or the last id it listed."""
    if cursor is None:
        return None
    if not isinstance(cursor, str) or not _CURSORS[kind].fullmatch(cursor):
        raise InvalidRequestError(
            f"cursor {cursor!r} is not a {kind} id; pass the next_cursor of the previous page.", field="cursor"
        )
    return cursor


def run_status(status: str | None) -> str | None:
    """The value of a run status filter (None: any status)."""
    if status is None:
        return None
    try:
        return RunStatus(status).value
    except ValueError:
        names = ", ".join(s.value for s in RunStatus)
        raise InvalidRequestError(f"status must be one of {names}; got {status!r}.", field="status") from None


def event_after(after: object) -> int:
    """``after`` when it is a sequence number (0: from the first event)."""
    return whole_number(after, "after", hint=" (an event's seq)", field="after")
