"""Routes for runs: status, listing, cancellation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from starlette.responses import Response

from ...runtime.paging import PAGE_MAX, page_cursor
from ...workflow import RunStatus
from ..secured import Access
from ..wire_json import dumps
from .models import RunPage, RunResponse
from .problems import problem_doc
from .security import principal_of

JSON = "application/json"


def add_run_routes(app: FastAPI, access: Access) -> None:
    """``GET /runs``, ``GET /runs/{run_id}``, ``POST /runs/{run_id}/cancel``."""

    @app.get(
        "/runs/{run_id}",
        response_model=RunResponse,
        tags=["runs"],
        summary="A run's status, per-node status and timings, outputs or error",
        responses={404: problem_doc("No such run")},
    )
    async def get_run(request: Request, run_id: str) -> Response:
        return _json(await access.runs(principal_of(request)).get_run(run_id))

    @app.post(
        "/runs/{run_id}/cancel",
        response_model=RunResponse,
        tags=["runs"],
        summary="Cancel a run at once (in-flight nodes are cancelled)",
        responses={
            404: problem_doc("No such run"),
            409: problem_doc("Already finished"),
        },
    )
    async def cancel_run(request: Request, run_id: str) -> Response:
        return _json(await access.runs(principal_of(request)).cancel(run_id))

    @app.get("/runs", response_model=RunPage, tags=["runs"], summary="List runs, newest first")
    async def list_runs(
        request: Request,
        workflow: str | None = None,
        status: RunStatus | None = None,
        session_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 50,
        cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    ) -> Response:
        filters: dict[str, Any] = {
            "workflow": workflow,
            "status": status.value if status else None,
            "session_id": session_id,
            "limit": limit,
            "before": page_cursor(cursor, "run"),
        }
        return _json(await access.runs(principal_of(request)).list_runs(filters))


def _json(body: Any, status_code: int = 200) -> Response:
    return Response(dumps(body), status_code=status_code, media_type=JSON)
