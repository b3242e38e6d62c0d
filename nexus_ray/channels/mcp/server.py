"""The MCP channel: every registered workflow is a tool, run through the same run actors
as REST (same run records, same events), built on the SDK's low-level ``Server`` so each
tool carries its workflow's own JSON Schema."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

import mcp_types as types
from mcp.server import Server
from mcp.server.subscriptions import ListenHandler, SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ResourceUpdated

from ... import __version__
from ...errors import InputValidationError, NexusError
from ...registry import RegisteredWorkflow, not_found
from ...runtime.ids import new_run_id
from ...runtime.subscriptions import EventHub
from ...workflow.events import RUN_TERMINAL
from ..http.gateway import RunGateway
from ..http.sessions import SessionGateway
from .builtins import BUILTIN_TOOLS, call_builtin
from .resources import list_resources, list_templates, read_resource

T = TypeVar("T")
SESSION_ARGUMENT = "session_id"
SESSION_HEADER = "x-nexus-session-id"


class McpChannel:
    """The state the MCP handlers share: the catalog and the gateways to the runtime."""

    def __init__(self, catalog: Mapping[str, RegisteredWorkflow], runner: RunGateway, sessions: SessionGateway) -> None:
        self.catalog, self.runner, self.sessions = catalog, runner, sessions
        self._hub: EventHub | None = None

    @property
    def hub(self) -> EventHub:
        if self._hub is None:  # made on the serving loop
            self._hub = EventHub("run", self.runner.wait_events)
        return self._hub

    def tools(self) -> list[types.Tool]:
        """One tool per workflow, plus the built-in ones."""
        return [workflow_tool(item) for item in self.catalog.values()] + list(BUILTIN_TOOLS)

    async def call(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        """Run a tool; every failure is an ``isError`` result naming what went wrong."""
        arguments = dict(params.arguments or {})
        try:
            if params.name in self.catalog:
                return await self._run(ctx, self.catalog[params.name], arguments)
            if any(tool.name == params.name for tool in BUILTIN_TOOLS):
                return text_result(await call_builtin(params.name, arguments, self.runner, self.sessions))
            raise not_found(params.name, [*self.catalog, *(t.name for t in BUILTIN_TOOLS)])
        except NexusError as exc:
            return error_result(exc)

    async def _run(self, ctx: Any, item: RegisteredWorkflow, arguments: dict[str, Any]) -> types.CallToolResult:
        session_id = _session_of(ctx, item, arguments)
        wants_progress = _wants_progress(ctx)
        if session_id is not None:
            started = await self.runner.execute_in_session(item.name, arguments, session_id, False)
            run_id = started["run_id"]
        else:
            node_inputs = item.workflow.resolve_inputs(arguments, item.name)
            run_id = new_run_id()
            if not wants_progress:  # one hop, like REST
                return run_result(await self._guarded(run_id, self.runner.execute(item.name, node_inputs, run_id)))
            await self.runner.start(item.name, node_inputs, run_id)
        end = await self._guarded(run_id, self._follow(ctx, run_id, len(item.workflow.nodes)))
        if end is None:  # the stream ended without a terminal event: ask the run itself
            return run_result(await self.runner.get_run(run_id))
        return run_result({"run_id": run_id, **end["data"]})

    async def _guarded(self, run_id: str, work: Awaitable[T]) -> T:
        """``work``; if the client cancels the request meanwhile, the run is cancelled too."""
        try:
            return await work
        except asyncio.CancelledError:
            await asyncio.shield(_cancel_quietly(self.runner, run_id))
            raise

    async def _follow(self, ctx: Any, run_id: str, total: int) -> dict[str, Any] | None:
        """Report progress per node event until the run ends; its terminal event (which
        carries the status, outputs and error, so no further call is needed)."""
        done = 0
        async with contextlib.aclosing(self.hub.subscribe(run_id)) as events:
            async for event in events:
                if event is None:
                    continue
                kind, data = event["type"], event["data"]
                if kind in RUN_TERMINAL:
                    return event
                if kind in ("node.completed", "node.skipped", "node.failed"):
                    done += 1
                if kind.startswith("node."):
                    message = f"{kind} {data.get('node')}"
                    if kind == "node.progress" and data.get("message"):
                        message += f": {data['message']}"
                    await ctx.session.report_progress(done, total, message)
        return None


def workflow_tool(item: RegisteredWorkflow) -> types.Tool:
    """The MCP tool of a workflow: its name, description and schemas."""
    output = item.output_schema if item.output_schema.get("type") == "object" else None
    return types.Tool(
        name=item.name,
        description=item.description or f"Run the workflow {item.name!r}.",
        input_schema=item.input_schema,
        output_schema=output,
    )


def run_result(run: dict[str, Any]) -> types.CallToolResult:
    """A finished run as a tool result: outputs as structured content plus a short text;
    a failed or cancelled run is an error naming the node and message."""
    meta = {"nexus/run_id": run["run_id"], "nexus/status": run["status"]}
    if run["status"] != "completed":
        error = run.get("error") or {}
        text = f"Run {run['run_id']} {run['status']}"
        if error:
            text += f" in node {error.get('node')!r}: {error.get('type')}: {error.get('message')}"
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True, _meta=meta)
    outputs = run.get("outputs", {})
    text = json.dumps(outputs, default=str)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text[:2000])], structured_content=outputs, _meta=meta
    )


def text_result(value: Any) -> types.CallToolResult:
    """A built-in tool's JSON answer."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=json.dumps(value, default=str))],
        structured_content=value if isinstance(value, dict) else {"result": value},
    )


def error_result(exc: NexusError) -> types.CallToolResult:
    """An error result: the message, and for invalid inputs each field and why."""
    text = exc.message
    if isinstance(exc, InputValidationError):
        text = "Invalid arguments: " + "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], is_error=True, _meta={"nexus/error": exc.to_problem()}
    )


def _wants_progress(ctx: Any) -> bool:
    """Whether the caller asked for progress. The SDK has no public way to ask, so this
    reads its request channel (JSON-RPC: a progress token; in-process: a callback); when
    that cannot be read, it assumes yes (progress is then sent, and dropped if unwanted)."""
    meta = getattr(ctx, "meta", None)
    if isinstance(meta, Mapping) and meta.get("progressToken", meta.get("progress_token")) is not None:
        return True
    outbound = getattr(getattr(ctx, "session", None), "_request_outbound", None)
    for attribute in ("_progress_token", "progress_token", "_on_progress"):
        if hasattr(outbound, attribute):
            return getattr(outbound, attribute) is not None
    return True


def _session_of(ctx: Any, item: RegisteredWorkflow, arguments: dict[str, Any]) -> str | None:
    """The Nexus session a call joins: a ``session_id`` argument (when the workflow has no
    input of that name) or the ``X-Nexus-Session-Id`` header."""
    if SESSION_ARGUMENT in arguments and SESSION_ARGUMENT not in item.workflow.inputs.by_name:
        return str(arguments.pop(SESSION_ARGUMENT))
    request = getattr(ctx, "request", None)
    headers = getattr(request, "headers", None)
    return headers.get(SESSION_HEADER) if headers is not None else None


async def _cancel_quietly(runner: RunGateway, run_id: str) -> None:
    with contextlib.suppress(NexusError):  # it finished meanwhile
        await runner.cancel(run_id)


def build_mcp_server(
    catalog: Mapping[str, RegisteredWorkflow],
    runner: RunGateway,
    sessions: SessionGateway,
    bus: SubscriptionBus | None = None,
) -> Server[Any]:
    """The MCP server over ``catalog`` (tools, built-in tools, resources); with ``bus``,
    clients can listen for what is published there (``tools/list_changed``)."""
    channel = McpChannel(catalog, runner, sessions)

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=channel.tools())

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await channel.call(ctx, params)

    async def on_list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=list_resources(catalog))

    async def on_list_resource_templates(ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=list_templates())

    async def on_read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        try:
            return await read_resource(str(params.uri), catalog, runner, sessions)
        except NexusError as exc:
            raise MCPError(exc.mcp_code, exc.message, exc.to_problem()) from None

    return Server(
        "nexus_ray",
        version=__version__,
        instructions="Each tool runs a registered workflow durably; nexus_* tools manage runs and sessions.",
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
        on_list_resources=on_list_resources,
        on_list_resource_templates=on_list_resource_templates,
        on_read_resource=on_read_resource,
        on_subscriptions_listen=session_aware_listen(ListenHandler(bus), bus, sessions) if bus is not None else None,
    )


SESSION_URI = "nexus://sessions/"


def session_aware_listen(listen: ListenHandler, bus: SubscriptionBus, sessions: SessionGateway) -> Any:
    """The listen handler, plus: for each ``nexus://sessions/{id}`` the client subscribes
    to, a follower that publishes ``ResourceUpdated`` on every new event of that session
    (whichever channel made it) for as long as the client listens."""

    async def on_listen(ctx: Any, params: Any) -> Any:
        wanted = getattr(getattr(params, "notifications", None), "resource_subscriptions", None) or []
        uris = [uri for uri in wanted if uri.startswith(SESSION_URI)]
        followers = [asyncio.ensure_future(_follow_session(uri, bus, sessions)) for uri in uris]
        try:
            return await listen(ctx, params)
        finally:
            for follower in followers:
                follower.cancel()

    return on_listen


async def _follow_session(uri: str, bus: SubscriptionBus, sessions: SessionGateway) -> None:
    session_id = uri.removeprefix(SESSION_URI)
    after = await _last_seq(session_id, sessions)
    while True:
        try:
            events, ended = await sessions.wait_events(session_id, after, 15.0)
        except NexusError:  # no such session (any more): nothing to follow
            return
        if events:
            after = events[-1]["seq"]
            await bus.publish(ResourceUpdated(uri=uri))
        if ended:
            return


async def _last_seq(session_id: str, sessions: SessionGateway) -> int:
    """The session's newest event (updates after it are news), paging through the log."""
    after = 0
    while True:
        try:
            events, _ = await sessions.wait_events(session_id, after, 0.0)
        except NexusError:
            return after
        if not events:
            return after
        after = events[-1]["seq"]
