"""``GET /audit``: the caller's tenant's audit trail (admin only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from pydantic import BaseModel
from starlette.responses import Response

from ...errors import ConflictError
from ...runtime.paging import EVENTS_MAX, page_cursor
from ...security.guard import Guard
from ..wire_json import dumps
from .problems import problem_doc
from .security import principal_of


class AuditEntry(BaseModel):
    """Who did what to which workflow, run or session, when, from which channel, and the outcome."""

    audit_id: str
    at: float
    tenant: str
    subject: str
    channel: str
    action: str
    target: str | None = None
    workflow: str | None = None
    outcome: str
    status: int | None = None
    detail: dict[str, Any] | None = None


class AuditPage(BaseModel):
    """One page of audit entries, newest first."""

    entries: list[AuditEntry]
    next_cursor: str | None = None


def add_audit_routes(app: FastAPI, guard: Guard) -> None:
    """``GET /audit``."""

    @app.get(
        "/audit",
        response_model=AuditPage,
        tags=["system"],
        summary="The audit trail of the caller's tenant, newest first (admin)",
        responses={403: problem_doc("The caller is not an admin"), 409: problem_doc("The audit trail is off")},
    )
    async def list_audit(
        request: Request,
        subject: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        since: Annotated[
            float | None, Query(allow_inf_nan=False, description="Unix time: entries at or after it")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=EVENTS_MAX)] = 100,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    ) -> Response:
        principal = principal_of(request)
        guard.require(principal, "admin")
        if guard.calls is None or not guard.audit.enabled:
            raise ConflictError("The audit trail is off (NEXUS_AUDIT=false, or auth off without NEXUS_AUDIT=true).")
        await guard.audit.flush()  # this replica's latest entries first
        filters = {"subject": subject, "action": action, "outcome": outcome, "since": since}
        filters |= {"before": page_cursor(cursor, "audit entry"), "limit": limit}
        entries = await guard.calls.list_audit(principal.tenant, filters)
        if principal.tenant == "default":  # the operator's tenant also sees failed sign-ins
            entries = sorted(entries + await guard.calls.list_audit("-", filters), key=lambda e: e["audit_id"])[::-1]
            entries = entries[:limit]
        next_cursor = entries[-1]["audit_id"] if len(entries) == limit else None
        return Response(dumps({"entries": entries, "next_cursor": next_cursor}), media_type="application/json")
