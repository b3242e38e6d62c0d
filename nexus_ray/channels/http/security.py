"""The HTTP side of security: an ASGI middleware that authenticates every request (but
the open paths), applies the rate limits, and records each action in the audit trail;
and the helpers routes use to learn who is calling."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...checks import decimal
from ...errors import AuthenticationError, NexusError, PayloadTooLargeError
from ...registry import RegisteredWorkflow
from ...security.guard import Guard
from ...security.principal import ANONYMOUS, Principal
from ..wire_json import dumps
from .problems import PROBLEM_MEDIA_TYPE

PRINCIPAL = "nexus.principal"
AUDIT = "nexus.audit"  # routes add {"target": ..., "workflow": ...} for the audit entry
ALWAYS_OPEN = frozenset({"/health", "/ready"})
DOCS = ("/docs", "/openapi.json", "/redoc")
EXECUTE = re.compile(r"^/workflows/([^/]+)/execute/?$")
UNKNOWN = Principal("unauthenticated", "-", (), "none")


def principal_of(connection: HTTPConnection) -> Principal:
    """Who makes this request (set by :class:`SecurityMiddleware` on every HTTP request it
    lets through). Fails closed: a request it did not see has no principal."""
    principal = connection.scope.get(PRINCIPAL)
    if principal is None:
        raise AuthenticationError("This request was not authenticated.", reason="missing")
    return principal  # type: ignore[no-any-return]


def audit_note(connection: HTTPConnection, **fields: Any) -> None:
    """Add ``target``/``workflow``/``detail`` to this request's audit entry."""
    connection.scope.setdefault(AUDIT, {}).update(fields)


def channel_of(headers: Mapping[str, str]) -> str:
    """'cli' for the nexus CLI (its User-Agent), else 'rest'."""
    return "cli" if headers.get("user-agent", "").startswith("nexus-cli") else "rest"


class SecurityMiddleware:
    """Authenticate, rate-limit and audit each HTTP request. WebSockets authenticate in
    their handler (a browser sends the token in the first message); ``/mcp`` requests are
    authenticated here and limited per tool call by the MCP channel."""

    def __init__(
        self, app: ASGIApp, guard: Guard, workflows: Mapping[str, RegisteredWorkflow], max_body_bytes: int
    ) -> None:
        self.app, self.guard, self.workflows, self.max_body_bytes = app, guard, workflows, max_body_bytes
        # Auth, the global limit and audit off (local development): only per-workflow
        # limits and the body size need a look, so most requests pass straight through.
        self.passive = not guard.enabled and guard.rate_limit is None and not guard.audit.enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._open(scope["path"]):
            await self.app(scope, receive, send)
            return
        if self._passes(scope):
            scope[PRINCIPAL] = ANONYMOUS
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        principal, rate_headers = UNKNOWN, {}
        try:
            _check_length(headers, self.max_body_bytes)  # /mcp reads its own body: limit it here
            principal = self.guard.authenticate(headers)
            if scope["path"] == "/metrics":
                self.guard.require(principal, "admin")
            if not scope["path"].startswith("/mcp"):
                rate_headers = await self.guard.admit(principal, *self._limited_workflow(scope["path"]))
        except NexusError as exc:
            await _problem(send, exc, scope["path"])
            self._audit(scope, headers, principal, exc.http_status)
            return
        scope[PRINCIPAL] = principal
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if rate_headers:
                    message["headers"] = [*message.get("headers", []), *_encode(rate_headers)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            if not scope["path"].startswith("/mcp"):  # MCP audits each tool call itself
                self._audit(scope, headers, principal, status)

    def _passes(self, scope: Scope) -> bool:
        if not self.passive:
            return False
        match = EXECUTE.match(scope["path"])
        item = self.workflows.get(match.group(1)) if match else None
        if item is not None and item.rate_limit is not None:
            return False
        return not scope["path"].startswith("/mcp")  # whose body size is checked here

    def _open(self, path: str) -> bool:
        if path in ALWAYS_OPEN:
            return True
        if path.startswith(DOCS):
            return self.guard.public_docs
        if path == "/metrics":
            return self.guard.public_metrics
        return False

    def _limited_workflow(self, path: str) -> tuple[str | None, Any]:
        match = EXECUTE.match(path)
        item = self.workflows.get(match.group(1)) if match else None
        return (item.name, item.rate_limit) if item is not None else (None, None)

    def _audit(self, scope: Scope, headers: Mapping[str, str], principal: Principal, status: int) -> None:
        if not self.guard.audit.enabled:
            return
        route = scope.get("route")
        params = scope.get("path_params", {})
        note = scope.get(AUDIT, {})
        name = getattr(route, "name", None)
        workflow = note.get("workflow") or params.get("name") or params.get("workflow")
        if name is None:  # refused before routing (401, 429): name it from the path
            match = EXECUTE.match(scope["path"])
            name, workflow = ("execute", match.group(1)) if match else (f"{scope['method']} {scope['path']}", None)
        elif name.startswith("execute_"):
            name, workflow = "execute", name.removeprefix("execute_")
        target = note.get("target") or params.get("run_id") or params.get("session_id")
        self.guard.audit.record(
            principal, channel_of(headers), name, status, target=target, workflow=workflow, detail=note.get("detail")
        )


def _check_length(headers: Mapping[str, str], limit: int) -> None:
    declared = decimal(headers.get("content-length", ""))
    if declared is not None and declared > limit:
        raise PayloadTooLargeError(
            f"The request body is larger than {limit} bytes (NEXUS_MAX_BODY_BYTES).", limit_bytes=limit
        )


def _encode(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def _problem(send: Send, exc: NexusError, path: str) -> None:
    body = dumps(exc.to_problem(path))
    headers = [(b"content-type", PROBLEM_MEDIA_TYPE.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": exc.http_status, "headers": headers + _encode(exc.headers())})
    await send({"type": "http.response.body", "body": body})
