"""The MCP channel with the official client, in memory (no Ray, no HTTP): tools with the
workflows' schemas, runs through the same RunService as REST, progress, errors, sessions,
resources."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from nexus_ray import Nexus, Settings, WorkflowBuilder
from nexus_ray.channels.mcp.server import build_mcp_server
from nexus_ray.channels.secured import Access
from nexus_ray.runtime.run_service import RunService
from nexus_ray.runtime.session_service import SessionService
from nexus_ray.security.guard import Guard
from nexus_ray.store import Store
from nexus_ray.store.backends import SQLiteBackend

from .helpers import double_plus_one
from .test_http_app import InProcessRunner, InProcessSessions, nap


class World:
    def __init__(self, tmp: Path) -> None:
        self.app = Nexus(port=0)
        self.app.register("double_plus_one", double_plus_one(), description="x -> 2x + 1")
        self.app.register("nap", nap)
        failing = WorkflowBuilder().add_node("PythonCodeNode", "explode", {"code": "result = 1 / zero"})
        self.app.register("fails", failing)

        @self.app.workflow
        def greet(name: str, excited: bool = False) -> str:
            return f"Hello, {name}{'!' if excited else '.'}"

        workflows = {name: item.workflow for name, item in self.app.workflows.items()}
        db = tmp / "nexus.db"
        self.session_service = SessionService("s0", lambda: Store(SQLiteBackend(db)))
        self.sessions = InProcessSessions(self.session_service)
        self.service = RunService(
            "h0", workflows, store_factory=lambda: Store(SQLiteBackend(db)), sessions=self.sessions
        )
        self.runner = InProcessRunner(self.service)
        access = Access(self.runner, self.sessions, Guard(Settings(), None))
        self.server = build_mcp_server(self.app.workflows, access)

    def close(self) -> None:
        self.service.close()
        self.session_service.close()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


async def test_tools_carry_the_workflow_schemas(world: World) -> None:
    async with Client(world.server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for name, item in world.app.workflows.items():
        assert tools[name].input_schema == item.input_schema
        assert tools[name].description == (item.description or f"Run the workflow {name!r}.")
    assert tools["double_plus_one"].output_schema == world.app.workflows["double_plus_one"].output_schema
    assert {"nexus_run_status", "nexus_cancel_run", "nexus_get_session", "nexus_update_session"} <= set(tools)


async def test_a_call_runs_the_workflow_with_progress_in_order(world: World) -> None:
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async with Client(world.server) as client:
        result = await client.call_tool("double_plus_one", {"x": 5}, progress_callback=on_progress)
    assert not result.is_error
    assert result.structured_content == {"double": {"result": {"value": 10}}, "add_one": {"result": {"value": 11}}}
    assert json.loads(result.content[0].text)["add_one"]["result"]["value"] == 11  # type: ignore[union-attr]
    assert [m for _, m in progress] == [
        "node.started double",
        "node.completed double",
        "node.started add_one",
        "node.completed add_one",
    ]
    assert [v for v, _ in progress] == [0, 1, 1, 2]
    run_id = result.meta["nexus/run_id"]  # type: ignore[index]
    stored = await world.runner.get_run(run_id)  # the same run record as REST
    assert stored["status"] == "completed"


async def test_errors_are_results_naming_the_problem(world: World) -> None:
    async with Client(world.server) as client:
        failed = await client.call_tool("fails", {"zero": 0})
        invalid = await client.call_tool("greet", {"excited": "very"})
        unknown = await client.call_tool("gret", {})
    assert failed.is_error and "node 'explode': ZeroDivisionError: division by zero" in failed.content[0].text  # type: ignore[union-attr]
    assert invalid.is_error and "name" in invalid.content[0].text and "excited" in invalid.content[0].text  # type: ignore[union-attr]
    assert unknown.is_error and "greet" in unknown.content[0].text  # type: ignore[union-attr]


async def test_sessions_are_shared_with_the_other_channels(world: World) -> None:
    session = await world.sessions.create({"name": "ada"}, None)
    sid = session["session_id"]
    async with Client(world.server) as client:
        greeted = await client.call_tool("greet", {"session_id": sid, "excited": True})
        assert greeted.structured_content == {"greet": {"result": "Hello, ada!"}}
        seen = await client.call_tool("nexus_get_session", {"session_id": sid})
        assert seen.structured_content["state"] == {"name": "ada"}  # type: ignore[index]
        updated = await client.call_tool("nexus_update_session", {"session_id": sid, "patch": {"name": "bob"}})
        assert updated.structured_content["version"] == 2  # type: ignore[index]
        stale = await client.call_tool("nexus_update_session", {"session_id": sid, "patch": {}, "if_version": 1})
        assert stale.is_error and "version 2" in stale.content[0].text  # type: ignore[union-attr]
    assert (await world.sessions.get(sid))["state"] == {"name": "bob"}


async def test_cancelling_the_request_cancels_the_run(world: World) -> None:
    async with Client(world.server) as client:
        call = asyncio.ensure_future(client.call_tool("nap", {"seconds": 5}))
        await asyncio.sleep(0.3)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        await asyncio.sleep(0.3)
    runs = await world.runner.list_runs({"workflow": "nap", "limit": 5})
    assert runs and runs[0]["status"] == "cancelled"


async def test_resources(world: World) -> None:
    async with Client(world.server) as client:
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        assert {"nexus://workflows", "nexus://workflows/greet"} <= uris
        templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
        assert templates == {"nexus://runs/{run_id}", "nexus://sessions/{session_id}"}
        detail = await client.read_resource("nexus://workflows/double_plus_one")
        graph = json.loads(detail.contents[0].text)["graph"]  # type: ignore[union-attr]
        assert [n["id"] for n in graph["nodes"]] == ["double", "add_one"]
        result = await client.call_tool("greet", {"name": "x"})
        run = await client.read_resource(f"nexus://runs/{result.meta['nexus/run_id']}")  # type: ignore[index]
        assert json.loads(run.contents[0].text)["status"] == "completed"  # type: ignore[union-attr]


def test_progress_is_followed_only_when_the_caller_asked_for_it() -> None:
    from types import SimpleNamespace

    from nexus_ray.channels.mcp.server import _wants_progress

    def ctx(meta: dict[str, Any] | None, outbound: object) -> Any:
        return SimpleNamespace(meta=meta, session=SimpleNamespace(_request_outbound=outbound))

    http_without = SimpleNamespace(progress_token=None)
    assert not _wants_progress(ctx({}, http_without))  # streamable HTTP, no token: one hop
    assert _wants_progress(ctx({"progress_token": 4}, SimpleNamespace(progress_token=4)))
    assert not _wants_progress(ctx(None, SimpleNamespace(_progress_token=None)))  # JSON-RPC (stdio)
    assert _wants_progress(ctx({"progressToken": "t"}, object()))
    assert _wants_progress(ctx(None, object()))  # unknown transport: follow (progress dropped if unwanted)
