"""RFC 9457 problem+json for every error the HTTP channel returns."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ...errors import InputValidationError, NexusError
from ..wire_json import dumps

logger = logging.getLogger("nexus_ray.http")
PROBLEM_MEDIA_TYPE = "application/problem+json"

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}, "type": {"type": "string"}},
            },
        },
    },
    "required": ["type", "title", "status", "detail"],
}


def problem_doc(description: str) -> dict[str, Any]:
    """An OpenAPI response entry for a problem+json error."""
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_SCHEMA}}}


def problem_response(problem: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    """A problem+json response with the problem's status."""
    return Response(
        content=dumps(problem),
        status_code=int(problem["status"]),
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def install_problem_handlers(app: FastAPI, debug: bool = False) -> None:
    """Map NexusError, HTTP errors, request validation and unexpected errors to problem+json."""

    async def nexus_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NexusError)
        return problem_response(exc.to_problem(request.url.path), headers=exc.headers() or None)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 404:
            detail = f"No route {request.method} {request.url.path}. See /docs for the API."
        problem = {
            "type": "about:blank",
            "title": title,
            "status": exc.status_code,
            "detail": detail,
            "instance": request.url.path,
        }
        return problem_response(problem, headers=getattr(exc, "headers", None))

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        return problem_response(InputValidationError(errors).to_problem(request.url.path))

    async def unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        detail = f"{type(exc).__name__}: {exc}" if debug else "Internal error; the server log has the details."
        problem = {
            "type": "about:blank",
            "title": "Internal error",
            "status": 500,
            "detail": detail,
            "instance": request.url.path,
        }
        return problem_response(problem)

    app.add_exception_handler(NexusError, nexus_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(Exception, unexpected)
