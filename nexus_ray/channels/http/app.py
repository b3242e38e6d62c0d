"""The FastAPI application of the HTTP channel (built inside each ingress replica)."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from mcp.server.subscriptions import InMemorySubscriptionBus
from prometheus_client import CollectorRegistry
from starlette.responses import Response

from ... import __version__
from ...registry import RegisteredWorkflow, not_found
from ...security.guard import Guard
from ...security.principal import Principal
from ...settings import Settings
from ...workflow.fields import json_schema_for
from ..mcp.http import MCP_PATH, McpPathWithoutSlash, build_mcp_app
from ..secured import Access
from ..wire_json import dumps
from .audit_routes import add_audit_routes
from .body import idempotency_key, parse_execute_request, read_json_body
from .gateway import RunGateway
from .live_catalog import CatalogChanges, diff, follow_catalog
from .models import Health, RunAccepted, RunResponse, WorkflowDetail, WorkflowSummary
from .problems import install_problem_handlers, problem_doc
from .runs import add_run_routes
from .security import SecurityMiddleware, audit_note, principal_of
from .sessions import SessionGateway, add_session_routes
from .streams import Hubs, add_stream_routes, sse_response
from .system import RequestMetrics, add_system_routes

JSON = "application/json"
IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "The same key with the same request returns the same run (also while it runs); "
    "with a different request, 409.",
    "schema": {"type": "string", "maxLength": 255},
}


def build_http_app(
    catalog: Mapping[str, RegisteredWorkflow],
    runner: RunGateway,
    sessions: SessionGateway,
    settings: Settings,
    catalog_changes: CatalogChanges | None = None,
    guard: Guard | None = None,
) -> FastAPI:
    """The REST API over ``catalog``: one documented execute route per workflow, runs,
    sessions, streams, MCP. With ``catalog_changes``, the workflows follow the catalog
    actor while serving (see live_catalog.py). ``guard`` authenticates, authorizes,
    limits and audits (default: auth off, for tests and local use)."""
    workflows = dict(catalog)  # changed in place when the catalog changes
    guard = guard if guard is not None else Guard(settings, None)
    access = Access(runner, sessions, guard)
    bus = InMemorySubscriptionBus()
    mcp_app, mcp_lifespan = build_mcp_app(workflows, access, settings, bus)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await guard.start()
        async with mcp_lifespan(app):
            watcher = None
            if catalog_changes is not None:
                watcher = asyncio.ensure_future(follow_catalog(catalog_changes, apply_entries, bus))
            try:
                yield
            finally:
                if watcher is not None:
                    watcher.cancel()
                await guard.stop()

    app = FastAPI(
        title="nexus_ray",
        version=__version__,
        description="Registered workflows as REST endpoints (and MCP tools at /mcp). Errors are RFC 9457 problem+json.",
        lifespan=lifespan,
    )
    install_problem_handlers(app, debug=settings.debug)

    @app.get("/health", response_model=Health, tags=["system"], summary="Liveness (open, also with auth on)")
    async def health() -> Response:
        body = {"status": "ok", "catalog": catalog_digest(workflows)}
        return Response(dumps(body), media_type=JSON)

    @app.get(
        "/workflows",
        response_model=list[WorkflowSummary],
        tags=["workflows"],
        summary="List the workflows the caller may execute or read",
    )
    async def list_workflows(request: Request) -> Response:
        principal = principal_of(request)
        visible = [w.summary() for w in workflows.values() if _visible(guard, principal, w.name)]
        return Response(dumps(visible), media_type=JSON)

    hubs = Hubs(runner, sessions)

    @app.get(
        "/workflows/{name}",
        response_model=WorkflowDetail,
        tags=["workflows"],
        summary="A workflow: schemas and node graph",
        responses={404: problem_doc("No such workflow")},
    )
    async def describe_workflow(request: Request, name: str) -> Response:
        item = workflows.get(name)
        if item is None:
            raise not_found(name, list(workflows))
        if not _visible(guard, principal_of(request), name):
            guard.require(principal_of(request), "read", name)
        return Response(dumps(item.detail()), media_type=JSON)

    def execute_route(item: RegisteredWorkflow) -> APIRoute:
        return APIRoute(
            f"/workflows/{item.name}/execute",
            _execute_endpoint(item, access, hubs, settings.max_body_bytes),
            methods=["POST"],
            name=f"execute_{item.name}",
            summary=f"Execute {item.name}",
            description=item.description or f"Run the workflow {item.name!r} and wait for its outputs.",
            tags=["workflows"],
            openapi_extra={"requestBody": _request_body(item), "parameters": [IDEMPOTENCY_PARAMETER]},
            responses=_responses(item),
        )

    execute_routes = {name: execute_route(item) for name, item in workflows.items()}
    app.router.routes.extend(execute_routes.values())

    def apply_entries(entries: dict[str, RegisteredWorkflow]) -> None:
        removed, added = diff(workflows, entries)
        for name in removed + added:
            workflows.pop(name, None)
            route = execute_routes.pop(name, None)
            if route is not None:
                app.router.routes.remove(route)
        fallback = app.router.routes.index(fallback_route)
        for name in added:
            workflows[name] = entries[name]
            execute_routes[name] = execute_route(entries[name])
            app.router.routes.insert(fallback, execute_routes[name])  # before the catch-all
        if removed or added:
            app.openapi_schema = None  # rebuilt with the current routes on the next request

    async def unknown_workflow(name: str) -> Response:
        raise not_found(name, list(workflows))

    app.add_api_route("/workflows/{name}/execute", unknown_workflow, methods=["POST"], include_in_schema=False)
    fallback_route = app.router.routes[-1]
    add_run_routes(app, access)
    add_session_routes(app, access, settings.max_body_bytes)
    add_stream_routes(app, hubs, access, workflows, settings.max_body_bytes)
    add_audit_routes(app, guard)
    registry = CollectorRegistry(auto_describe=False)
    add_system_routes(app, runner, sessions, registry)
    app.mount(MCP_PATH, mcp_app)
    app.add_middleware(McpPathWithoutSlash)
    app.add_middleware(SecurityMiddleware, guard=guard, workflows=workflows, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, registry=registry)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["ETag", "Location", "Retry-After"],
        )
    return app


def _visible(guard: Guard, principal: Principal, name: str) -> bool:
    return guard.allowed(principal, "execute", name) or guard.allowed(principal, "read", name)


def catalog_digest(workflows: Iterable[str]) -> str:
    """A short digest of the workflow names (``/health`` shows it, so a deploy can tell
    when every replica serves the new catalog without a credential)."""
    return hashlib.sha256("\n".join(sorted(workflows)).encode()).hexdigest()[:16]


def _execute_endpoint(
    item: RegisteredWorkflow, access: Access, hubs: Hubs, limit: int
) -> Callable[[Request], Awaitable[Response]]:
    name, workflow = item.name, item.workflow

    async def execute(request: Request) -> Response:
        runner = access.runs(principal_of(request))
        runner.may_execute(item)
        envelope = parse_execute_request(await read_json_body(request, limit), name)
        access.guard.check_depth(envelope.inputs, "inputs")
        key = idempotency_key(request)
        stream = envelope.mode == "stream" or "text/event-stream" in request.headers.get("accept", "")
        wait = envelope.mode == "sync" and not stream
        if envelope.session_id is not None:
            result = await runner.execute_in_session(name, envelope.inputs, envelope.session_id, wait, key)
            audit_note(request, target=result["run_id"])
            if stream:
                return await sse_response(hubs.runs.subscribe(result["run_id"]))
            return _run_response(result, wait)
        node_inputs = workflow.resolve_inputs(envelope.inputs, name)
        if key is not None:
            result = await runner.execute_idempotent(key, name, node_inputs, wait)
        elif wait:
            result = await runner.execute(name, node_inputs, runner.new_run_id())
        else:
            result = await runner.start(name, node_inputs, runner.new_run_id())
        audit_note(request, target=result["run_id"])
        if stream:
            return await sse_response(hubs.runs.subscribe(result["run_id"]))
        return _run_response(result, wait)

    return execute


def _run_response(result: dict[str, Any], wait: bool) -> Response:
    if wait:
        return Response(dumps(result), media_type=JSON)
    location = {"location": f"/runs/{result['run_id']}"}
    return Response(dumps(result), status_code=202, media_type=JSON, headers=location)


def _request_body(item: RegisteredWorkflow) -> dict[str, Any]:
    schema = {
        "type": "object",
        "title": f"Execute {item.name}",
        "properties": {"inputs": item.input_schema},
        "additionalProperties": False,
    }
    if item.input_schema.get("required"):
        schema["required"] = ["inputs"]
    return {"required": True, "content": {JSON: {"schema": schema}}}


def _responses(item: RegisteredWorkflow) -> dict[int | str, dict[str, Any]]:
    run_schema = json_schema_for(RunResponse)
    run_schema["properties"]["outputs"] = item.output_schema
    return {
        200: {
            "description": "The run finished (status 'completed' or 'failed').",
            "content": {JSON: {"schema": run_schema}},
        },
        202: {
            "description": "mode 'async': the run started",
            "content": {JSON: {"schema": json_schema_for(RunAccepted)}},
        },
        400: problem_doc("Malformed JSON or Idempotency-Key"),
        401: problem_doc("No valid credential (auth on)"),
        403: problem_doc("The caller may not execute this workflow"),
        429: problem_doc("Over a rate limit, or too many runs of the tenant (Retry-After says when to retry)"),
        409: problem_doc("Idempotency-Key reused with a different request"),
        413: problem_doc("Body too large"),
        422: problem_doc("Invalid inputs; 'errors' names each field"),
    }
