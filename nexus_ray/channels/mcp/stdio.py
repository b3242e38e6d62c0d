"""MCP over stdio, for desktop agents: ``nexus mcp --url URL`` bridges to a running server's
``/mcp``; ``nexus mcp --app APP`` runs the app here (embedded Ray) and serves its tools.

stdout carries the protocol only; everything else goes to stderr.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp import Client
from mcp.server import Server
from mcp.server.stdio import stdio_server

from ... import __version__

if TYPE_CHECKING:
    from ...app import Nexus


async def serve_stdio(server: Server[Any]) -> None:
    """Serve ``server`` on this process's stdin/stdout until the client closes it."""
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


async def serve_app_stdio(app: Nexus, token: str | None) -> None:
    """Serve ``app``'s tools over stdio, its runtime in this process (or joined). With
    auth on, every call acts as the holder of ``token`` (401 without one)."""
    from ...security.admin import check_security
    from ...security.guard import Guard
    from ..secured import Access
    from .server import build_mcp_server

    await asyncio.to_thread(check_security, app.settings)  # reads the store: off the loop
    pool = await asyncio.to_thread(app.runtime_pool)
    guard = Guard(app.settings, pool.security)
    await guard.start()
    try:
        principal = guard.authenticate_token(token) if token else guard.authenticate({})
        access = Access(pool.client(), pool.sessions(), guard)
        await serve_stdio(build_mcp_server(app.workflows, access, principal=principal))
    finally:
        await guard.stop()


def bridge_server(url: str, token: str | None = None) -> Server[Any]:
    """A stdio-side server forwarding tools and resources to the server at ``url``, with
    progress passed through. ``token`` is sent as a bearer token."""
    endpoint = url.rstrip("/") + "/mcp"

    @asynccontextmanager
    async def remote(_: Server[Any]) -> AsyncIterator[Client]:
        async with Client(_transport(endpoint, token)) as client:
            yield client

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return await ctx.lifespan_context.list_tools()  # type: ignore[no-any-return]

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        async def forward(progress: float, total: float | None, message: str | None) -> None:
            await ctx.session.report_progress(progress, total, message)

        client: Client = ctx.lifespan_context
        return await client.call_tool(params.name, params.arguments, progress_callback=forward)

    async def on_list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        return await ctx.lifespan_context.list_resources()  # type: ignore[no-any-return]

    async def on_list_resource_templates(ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        return await ctx.lifespan_context.list_resource_templates()  # type: ignore[no-any-return]

    async def on_read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        return await ctx.lifespan_context.read_resource(str(params.uri))  # type: ignore[no-any-return]

    return Server(
        "nexus_ray",
        version=__version__,
        lifespan=remote,
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
        on_list_resources=on_list_resources,
        on_list_resource_templates=on_list_resource_templates,
        on_read_resource=on_read_resource,
    )


def _transport(endpoint: str, token: str | None) -> Any:
    if token is None:
        return endpoint
    from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

    http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return streamable_http_client(endpoint, http_client=http)
