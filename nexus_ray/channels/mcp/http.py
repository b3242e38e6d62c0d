"""The MCP streamable-HTTP endpoint on the ingress: ``/mcp``.

Stateless mode: each request stands alone, so any ingress replica can answer any request
(legacy clients that do the session-id handshake and current ones both work with several
replicas), and what a conversation needs to keep lives in run and session actors, not in
the replica. Responses stream as SSE, so progress notifications reach the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from mcp.server.subscriptions import SubscriptionBus
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...registry import RegisteredWorkflow
from ...settings import Settings
from ..http.security import PRINCIPAL
from ..secured import Access
from ..wire_json import loads
from .server import build_mcp_server

MCP_PATH = "/mcp"
SESSION_TTL_S = 86_400.0  # a Nexus session made for an MCP session expires a day after its last change


def build_mcp_app(
    catalog: Mapping[str, RegisteredWorkflow],
    access: Access,
    settings: Settings,
    bus: SubscriptionBus | None = None,
) -> tuple[ASGIApp, Any]:
    """The MCP ASGI app (to mount at ``/mcp``) and a lifespan context for its host app.
    ``catalog`` may change in place; what is published on ``bus`` reaches listening clients."""
    server = build_mcp_server(catalog, access, bus)
    hosts = settings.mcp_allowed_hosts
    security = TransportSecuritySettings(enable_dns_rebinding_protection=hosts != ["*"], allowed_hosts=hosts)
    app = server.streamable_http_app(
        streamable_http_path="/", stateless_http=True, json_response=False, transport_security=security
    )

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        async with server.session_manager.run():
            yield

    return McpSessionMapping(app, access), lifespan


class McpSessionMapping:
    """Each MCP session of the handshake protocol is a Nexus session.

    At ``initialize`` (no ``Mcp-Session-Id`` yet) a Nexus session is created and its id
    returned as the ``Mcp-Session-Id``; the client sends it with every later request, and
    each tool call then runs in that session (as ``X-Nexus-Session-Id`` would make it).
    The id is the session's, so any replica serves any request, and REST, the CLI and
    Python see the same state. A 2026-07-28 client has no MCP session: it joins one with
    the header or a ``session_id`` argument.
    """

    def __init__(self, app: ASGIApp, access: Access, ttl_s: float = SESSION_TTL_S) -> None:
        self.app, self.access, self.ttl_s = app, access, ttl_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        mcp_session = headers.get(b"mcp-session-id")
        if mcp_session is not None:
            if b"x-nexus-session-id" not in headers:
                scope = {**scope, "headers": [*scope["headers"], (b"x-nexus-session-id", mcp_session)]}
            await self.app(scope, receive, send)
            return
        body, replay = await _buffer(receive)
        principal = scope.get(PRINCIPAL)  # set by the security middleware; none: no session
        if not _is_initialize(body) or principal is None or not self.access.guard.allowed(principal, "manage_sessions"):
            await self.app(scope, replay, send)  # without manage_sessions: stateless, no Nexus session
            return
        session = await self.access.sessions(principal).create({}, self.ttl_s)
        session_header = (b"mcp-session-id", session["session_id"].encode())

        async def send_with_session(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                message = {**message, "headers": [*message.get("headers", []), session_header]}
            await send(message)

        await self.app(scope, replay, send_with_session)


async def _buffer(receive: Receive) -> tuple[bytes, Receive]:
    """The whole request body, and a ``receive`` that hands it over again."""
    chunks, more = [], True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body, sent = b"".join(chunks), False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _is_initialize(body: bytes) -> bool:
    try:
        message = loads(body)
    except ValueError:  # malformed or refused (too deep): the MCP SDK answers it
        return False
    return isinstance(message, dict) and message.get("method") == "initialize"


class McpPathWithoutSlash:
    """``/mcp`` answers like ``/mcp/`` (a mount would redirect it with a 307, which some
    MCP clients do not follow for POST)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == MCP_PATH:
            scope = {**scope, "path": MCP_PATH + "/", "raw_path": (MCP_PATH + "/").encode()}
        await self.app(scope, receive, send)
