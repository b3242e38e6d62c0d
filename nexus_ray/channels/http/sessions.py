"""Routes for sessions: create, read, merge-patch (If-Match), delete, list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Protocol

from fastapi import FastAPI, Query, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.responses import Response

from ...checks import decimal
from ...errors import InputValidationError, InvalidRequestError
from ...runtime.paging import PAGE_MAX, page_cursor
from ...workflow.fields import describe_validation_error
from ..wire_json import dumps
from .body import read_json_body
from .problems import problem_doc
from .security import audit_note, principal_of

if TYPE_CHECKING:
    from ..secured import Access, PrincipalSessions

JSON = "application/json"


class SessionGateway(Protocol):
    """Sessions, each call sent to the SessionHost that owns the id."""

    async def create(
        self, state: dict[str, Any] | None, ttl_s: float | None, dedicated: bool | None = None, tenant: str = ...
    ) -> dict[str, Any]: ...
    async def get(self, session_id: str) -> dict[str, Any]: ...
    async def patch(self, session_id: str, patch: dict[str, Any], if_version: int | None) -> dict[str, Any]: ...
    async def delete(self, session_id: str) -> None: ...
    async def wait_events(self, session_id: str, after: int, timeout_s: float) -> tuple[list[dict[str, Any]], bool]: ...
    async def health(self) -> list[dict[str, Any]]: ...
    async def metrics_text(self) -> list[str]: ...
    async def list(self, limit: int, before: str | None, tenant_tag: str | None = None) -> list[dict[str, Any]]: ...


class CreateSession(BaseModel):
    """Body of ``POST /sessions``."""

    model_config = ConfigDict(extra="forbid", strict=True)  # true is no ttl_s, "yes" no boolean

    state: dict[str, Any] = Field(default_factory=dict, description="Initial state (a JSON object).")
    ttl_s: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="Expire after this many seconds without a change."
    )
    dedicated: bool | None = Field(None, description="Give the session its own Ray actor (default: the app's setting).")


class SessionModel(BaseModel):
    """A session."""

    session_id: str
    state: dict[str, Any]
    version: int = Field(description="Bumped by every change; send it as If-Match to change safely.")
    created_at: float
    updated_at: float
    expires_at: float | None = None
    ttl_s: float | None = None


class SessionPage(BaseModel):
    """One page of sessions, newest first."""

    sessions: list[SessionModel]
    next_cursor: str | None = None


def add_session_routes(app: FastAPI, access: Access, limit_bytes: int) -> None:
    """The ``/sessions`` routes."""

    def sessions(request: Request) -> PrincipalSessions:
        return access.sessions(principal_of(request))

    @app.post("/sessions", status_code=201, response_model=SessionModel, tags=["sessions"], summary="Create a session")
    async def create_session(request: Request) -> Response:
        body = await read_json_body(request, limit_bytes)
        try:
            spec = CreateSession.model_validate(body if body != {} else {})
        except ValidationError as exc:
            raise InputValidationError(describe_validation_error(exc, "body")) from None
        created = await sessions(request).create(spec.state, spec.ttl_s, spec.dedicated)
        audit_note(request, target=created["session_id"])
        return _session(created, 201, {"location": f"/sessions/{created['session_id']}"})

    @app.get(
        "/sessions/{session_id}",
        response_model=SessionModel,
        tags=["sessions"],
        summary="Read a session",
        responses={404: problem_doc("No such session (or expired)")},
    )
    async def get_session(request: Request, session_id: str) -> Response:
        return _session(await sessions(request).get(session_id))

    @app.patch(
        "/sessions/{session_id}",
        response_model=SessionModel,
        tags=["sessions"],
        summary="Change a session with a JSON merge patch (RFC 7396); If-Match: <version> to change safely",
        responses={
            404: problem_doc("No such session"),
            412: problem_doc("If-Match names a stale version"),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/merge-patch+json": {"schema": {"type": "object"}},
                    JSON: {"schema": {"type": "object"}},
                },
            }
        },
    )
    async def patch_session(session_id: str, request: Request) -> Response:
        patch = await read_json_body(request, limit_bytes)
        if not isinstance(patch, dict):
            raise InvalidRequestError("The body must be a JSON object (a JSON merge patch, RFC 7396).")
        return _session(await sessions(request).patch(session_id, patch, _if_match(request)))

    @app.delete(
        "/sessions/{session_id}",
        status_code=204,
        tags=["sessions"],
        summary="Delete a session",
        responses={404: problem_doc("No such session")},
    )
    async def delete_session(request: Request, session_id: str) -> Response:
        await sessions(request).delete(session_id)
        return Response(status_code=204)

    @app.get("/sessions", response_model=SessionPage, tags=["sessions"], summary="List sessions, newest first")
    async def list_sessions(
        request: Request, limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 50, cursor: str | None = None
    ) -> Response:
        page = await sessions(request).list(limit, page_cursor(cursor, "session"))
        next_cursor = page[-1]["session_id"] if len(page) == limit else None
        return Response(dumps({"sessions": page, "next_cursor": next_cursor}), media_type=JSON)


def _session(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    etag = {"etag": f'"{body["version"]}"'}
    return Response(dumps(body), status_code=status, media_type=JSON, headers={**etag, **(headers or {})})


def _if_match(request: Request) -> int | None:
    raw = request.headers.get("if-match")
    if raw is None or raw.strip() == "*":  # "*": whatever the current version is (RFC 9110)
        return None
    version = decimal(raw.strip().removeprefix("W/").strip('"'))
    if version is None or version < 1:
        raise InvalidRequestError(
            f'If-Match must be a session version (e.g. "3") or *, got {raw!r}.', header="If-Match"
        )
    return version
