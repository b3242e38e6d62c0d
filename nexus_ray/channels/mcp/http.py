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
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from ...registry import RegisteredWorkflow
from ...settings import Settings
from ..http.gateway import RunGateway
from ..http.sessions import SessionGateway
from .server import build_mcp_server

MCP_PATH = "/mcp"


def build_mcp_app(
    catalog: Mapping[str, RegisteredWorkflow],
    runner: RunGateway,
    sessions: SessionGateway,
    settings: Settings,
    bus: SubscriptionBus | None = None,
) -> tuple[Starlette, Any]:
    """The MCP ASGI app (to mount at ``/mcp``) and a lifespan context for its host app.
    ``catalog`` may change in place; what is published on ``bus`` reaches listening clients."""
    server = build_mcp_server(catalog, runner, sessions, bus)
    hosts = settings.mcp_allowed_hosts
    security = TransportSecuritySettings(enable_dns_rebinding_protection=hosts != ["*"], allowed_hosts=hosts)
    app = server.streamable_http_app(
        streamable_http_path="/", stateless_http=True, json_response=False, transport_security=security
    )

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        async with server.session_manager.run():
            yield

    return app, lifespan


class McpPathWithoutSlash:
    """``/mcp`` answers like ``/mcp/`` (a mount would redirect it with a 307, which some
    MCP clients do not follow for POST)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == MCP_PATH:
            scope = {**scope, "path": MCP_PATH + "/", "raw_path": (MCP_PATH + "/").encode()}
        await self.app(scope, receive, send)
