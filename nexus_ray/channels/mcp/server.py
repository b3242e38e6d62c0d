"""The MCP channel: every registered workflow is a tool, run through the same run actors
as REST (same run records, same events), built on the SDK's low-level ``Server`` so each
tool carries its workflow's own JSON Schema."""

from __future__ import annotations

import asyncio
import contextlib
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
from ...runtime.subscriptions import EventHub
from ...security.principal import ANONYMOUS, Principal
from ...workflow.events import RUN_TERMINAL
from ..http.gateway import RunGateway
from ..http.security import PRINCIPAL
from ..http.sessions import SessionGateway
from ..secured import Access, PrincipalRuns
from ..wire_json import dumps_text, non_finite_at
from .builtins import BUILTIN_TOOLS, call_builtin
from .resources import list_resources, list_templates, read_resource

T = TypeVar("T")
SESSION_ARGUMENT = "session_id"
SESSION_HEADER = "x-nexus-session-id"


class McpChannel:
    """The state the MCP handlers share: the catalog and the gateways to the runtime.

    Args:
        catalog: The workflows (may change in place).
        access: The runtime as each principal may use it.
        principal: The caller of every request without one of its own (stdio: the token
            given to ``nexus mcp``); over HTTP the ingress authenticates each request.
    """

    def __init__(
        self, catalog: Mapping[str, RegisteredWorkflow], access: Access, principal: Principal | None = None
    ) -> None:
        self.catalog, self.access, self.guard = catalog, access, access.guard
        self.fixed_principal = principal
        self._hub: EventHub | None = None

    @property
    def hub(self) -> EventHub:
        if self._hub is None:  # made on the serving loop
            self._hub = EventHub("run", self.access.runner.wait_events)
        return self._hub

    def principal(self, ctx: Any) -> Principal:
        """Who makes this MCP request."""
        scope = getattr(getattr(ctx, "request", None), "scope", None)
        if isinstance(scope, Mapping) and PRINCIPAL in scope:
            return scope[PRINCIPAL]  # type: ignore[no-any-return]
        if self.fixed_principal is not None:
            return self.fixed_principal
        return self.guard.authenticate({})  # auth off: anonymous; on: 401

    def tools(self, principal: Principal) -> list[types.Tool]:
        """One tool per workflow the principal may execute, plus the built-in ones."""
        mine = [item for item in self.catalog.values() if self.guard.allowed(principal, "execute", item.name)]
        return [workflow_tool(item) for item in mine] + list(BUILTIN_TOOLS)

    async def call(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        """Run a tool; every failure is an ``isError`` result naming what went wrong."""
        arguments = dict(params.arguments or {})
        principal = ANONYMOUS
        try:
            principal = self.principal(ctx)
            _refuse_non_finite(arguments)
            result = await self._call(ctx, principal, params.name, arguments)
        except NexusError as exc:
            result = error_result(exc)
            self._audit(principal, params.name, exc.http_status, None)
            return result
        self._audit(principal, params.name, 500 if result.is_error else 200, (result.meta or {}).get("nexus/run_id"))
        return result

    async def _call(self, ctx: Any, principal: Principal, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        runs = self.access.runs(principal)
        item = self.catalog.get(name)
        if item is not None:
            runs.may_execute(item)
            await self.guard.admit(principal, item.name, item.rate_limit)
            self.guard.check_depth(arguments, "arguments")
            return await self._run(ctx, item, arguments, runs)
        await self.guard.admit(principal)
        if any(tool.name == name for tool in BUILTIN_TOOLS):
            return text_result(await call_builtin(name, arguments, runs, self.access.sessions(principal)))
        raise not_found(name, [*self.catalog, *(t.name for t in BUILTIN_TOOLS)])

    def _audit(self, principal: Principal, tool: str, status: int, run_id: str | None) -> None:
        workflow = tool if tool in self.catalog else None
        action = "execute" if workflow else f"tool:{tool}"
        self.guard.audit.record(principal, "mcp", action, status, target=run_id, workflow=workflow)

    async def _run(
        self, ctx: Any, item: RegisteredWorkflow, arguments: dict[str, Any], runs: PrincipalRuns
    ) -> types.CallToolResult:
        session_id = _session_of(ctx, item, arguments)
        wants_progress = _wants_progress(ctx)
        if session_id is not None:
            started = await runs.execute_in_session(item.name, arguments, session_id, False)
            run_id = started["run_id"]
        else:
            node_inputs = item.workflow.resolve_inputs(arguments, item.name)
            run_id = runs.new_run_id()
            if not wants_progress:  # one hop, like REST
                return run_result(await self._guarded(runs, run_id, runs.execute(item.name, node_inputs, run_id)))
            await runs.start(item.name, node_inputs, run_id)
        end = await self._guarded(runs, run_id, self._follow(ctx, run_id, len(item.workflow.nodes)))
        if end is None:  # the stream ended without a terminal event: ask the run itself
            return run_result(await runs.get_run(run_id))
        return run_result({"run_id": run_id, **end["data"]})

    async def _guarded(self, runs: PrincipalRuns, run_id: str, work: Awaitable[T]) -> T:
        """``work``; if the client cancels the request meanwhile, the run is cancelled too."""
        try:
            return await work
        except asyncio.CancelledError:
            await asyncio.shield(_cancel_quietly(self.access.runner, run_id))
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
    text = dumps_text(outputs, fallback=str)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text[:2000])], structured_content=outputs, _meta=meta
    )


def text_result(value: Any) -> types.CallToolResult:
    """A built-in tool's JSON answer."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=dumps_text(value, fallback=str))],
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


def _refuse_non_finite(arguments: dict[str, Any]) -> None:
    """422 for a NaN or infinity, which REST refuses as not JSON and the MCP SDK reads."""
    where = non_finite_at(arguments)
    if where is not None:
        message = "is NaN or infinite (NaN, Infinity or a number beyond about 1.8e308), which JSON cannot carry"
        raise InputValidationError([{"field": where, "message": message, "type": "finite_number"}])


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
    access: Access,
    bus: SubscriptionBus | None = None,
    principal: Principal | None = None,
) -> Server[Any]:
    """The MCP server over ``catalog`` (tools, built-in tools, resources); with ``bus``,
    clients can listen for what is published there (``tools/list_changed``). Callers
    without a principal of their own act as ``principal`` (stdio)."""
    channel = McpChannel(catalog, access, principal)

    async def on_list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        try:
            return types.ListToolsResult(tools=channel.tools(channel.principal(ctx)))
        except NexusError as exc:
            raise MCPError(exc.mcp_code, exc.message, exc.to_problem()) from None

    async def on_call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        return await channel.call(ctx, params)

    async def on_list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=list_resources(catalog))

    async def on_list_resource_templates(ctx: Any, params: Any) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=list_templates())

    async def on_read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        try:
            who = channel.principal(ctx)
            return await read_resource(str(params.uri), catalog, access.runs(who), access.sessions(who))
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
        on_subscriptions_listen=session_aware_listen(ListenHandler(bus), bus, channel) if bus is not None else None,
    )


SESSION_URI = "nexus://sessions/"


def session_aware_listen(listen: ListenHandler, bus: SubscriptionBus, channel: McpChannel) -> Any:
    """The listen handler, plus: for each ``nexus://sessions/{id}`` the client subscribes
    to (and may read), a follower that publishes ``ResourceUpdated`` on every new event of
    that session (whichever channel made it) for as long as the client listens."""
    sessions = channel.access.sessions_gateway

    async def on_listen(ctx: Any, params: Any) -> Any:
        wanted = getattr(getattr(params, "notifications", None), "resource_subscriptions", None) or []
        uris = [uri for uri in wanted if uri.startswith(SESSION_URI) and _readable(channel, ctx, uri)]
        followers = [asyncio.ensure_future(_follow_session(uri, bus, sessions)) for uri in uris]
        try:
            return await listen(ctx, params)
        finally:
            for follower in followers:
                follower.cancel()

    return on_listen


def _readable(channel: McpChannel, ctx: Any, uri: str) -> bool:
    try:
        channel.access.sessions(channel.principal(ctx)).readable(uri.removeprefix(SESSION_URI))
    except NexusError:
        return False  # not the caller's: never followed (and never reported)
    return True


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
