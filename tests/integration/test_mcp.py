"""MCP over streamable HTTP on the real ingress, with the official client."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from mcp import Client

from nexus_ray import Nexus


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_tools_calls_progress_and_sessions_over_http(app: Nexus, http: httpx.Client, mode: str) -> None:
    sid = http.post("/sessions", json={"state": {"name": "ada"}}).json()["session_id"]
    progress: list[str | None] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with Client(f"{app.url}/mcp", mode=mode) as client:  # type: ignore[arg-type]
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["double_plus_one"].input_schema == app.workflows["double_plus_one"].input_schema
        result = await client.call_tool("double_plus_one", {"x": 5}, progress_callback=on_progress)
        assert result.structured_content["add_one"] == {"result": {"value": 11}}  # type: ignore[index]
        assert progress == [
            "node.started double",
            "node.completed double",
            "node.started add_one",
            "node.completed add_one",
        ]
        greeted = await client.call_tool("greet", {"session_id": sid})
        assert greeted.structured_content == {"greet": {"result": "Hello, ada."}}
        await client.call_tool("nexus_update_session", {"session_id": sid, "patch": {"name": "bob"}})
        invalid = await client.call_tool("double_plus_one", {})
        assert invalid.is_error and "x" in invalid.content[0].text  # type: ignore[union-attr]
    assert http.get(f"/sessions/{sid}").json()["state"] == {"name": "bob"}  # seen over REST
    run_id = result.meta["nexus/run_id"]  # type: ignore[index]
    assert http.get(f"/runs/{run_id}").json()["status"] == "completed"  # the same run record


def test_mcp_answers_without_the_trailing_slash(http: httpx.Client) -> None:
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}},
    }
    headers = {"accept": "application/json, text/event-stream"}
    r = http.post("/mcp", json=init, headers=headers)
    assert r.status_code == 200 and "nexus_ray" in r.text
    refused = http.post("/mcp", json=init, headers={**headers, "host": "evil.example.com"})
    assert refused.status_code == 421


async def test_stdio_bridge_round_trip(app: Nexus) -> None:
    import sys

    from mcp import StdioServerParameters

    nexus = str(Path(sys.executable).parent / "nexus")
    params = StdioServerParameters(command=nexus, args=["mcp", "--url", app.url])
    progress: list[str | None] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"double_plus_one", "greet", "nexus_run_status"} <= names
        result = await client.call_tool("double_plus_one", {"x": 2}, progress_callback=on_progress)
        assert result.structured_content["add_one"] == {"result": {"value": 5}}  # type: ignore[index]
        workflows = await client.read_resource("nexus://workflows")
        assert "double_plus_one" in workflows.contents[0].text  # type: ignore[union-attr]
    assert progress[-1] == "node.completed add_one"


async def test_stdio_with_a_local_app_on_the_shared_cluster(app: Nexus, tmp_path: Path) -> None:
    import os
    import sys

    import ray
    from mcp import StdioServerParameters

    from .conftest import ROOT

    # stdio clients pass only a few variables on: hand over what joining the cluster needs.
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address, "NEXUS_HOME": str(tmp_path)}
    nexus = str(Path(sys.executable).parent / "nexus")
    params = StdioServerParameters(
        command=nexus, args=["mcp", "--app", str(ROOT / "examples" / "quickstart.py")], env=env
    )
    async with Client(params, read_timeout_seconds=120) as client:
        result = await client.call_tool("greet", {"name": "stdio"})
    assert result.structured_content == {"greet": {"result": "Hello, stdio."}}


def triple(x: int) -> int:
    """Three times x."""
    return 3 * x


async def test_registering_and_removing_a_workflow_while_serving(app: Nexus, http: httpx.Client) -> None:
    import asyncio

    async with Client(f"{app.url}/mcp") as client, client.listen(tools_list_changed=True) as changes:
        events = aiter(changes)
        await asyncio.to_thread(app.register, "triple", triple)
        try:
            await asyncio.wait_for(anext(events), 30)
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert tools["triple"].input_schema == app.workflows["triple"].input_schema
            assert (await client.call_tool("triple", {"x": 4})).structured_content == {"triple": {"result": 12}}
            rest = http.post("/workflows/triple/execute", json={"inputs": {"x": 5}}).json()
            assert rest["outputs"]["triple"]["result"] == 15
            assert "/workflows/triple/execute" in http.get("/openapi.json").json()["paths"]
        finally:
            await asyncio.to_thread(app.unregister, "triple")
        await asyncio.wait_for(anext(events), 30)
        assert "triple" not in {t.name for t in (await client.list_tools()).tools}
    assert http.post("/workflows/triple/execute", json={"inputs": {"x": 5}}).status_code == 404
    assert "/workflows/triple/execute" not in http.get("/openapi.json").json()["paths"]


async def test_a_subscribed_session_sends_resource_updated_for_a_rest_change(app: Nexus, http: httpx.Client) -> None:
    import asyncio

    sid = http.post("/sessions", json={"state": {"n": 0}}).json()["session_id"]
    uri = f"nexus://sessions/{sid}"
    async with Client(f"{app.url}/mcp") as client, client.listen(resource_subscriptions=[uri]) as updates:
        events = aiter(updates)
        await asyncio.sleep(0.5)  # the follower has read where the session's log is
        await asyncio.to_thread(http.patch, f"/sessions/{sid}", json={"n": 1})
        event = await asyncio.wait_for(anext(events), 30)
        assert getattr(event, "uri", None) == uri
        state = json.loads((await client.read_resource(uri)).contents[0].text)["state"]  # type: ignore[union-attr]
        assert state == {"n": 1}


async def test_a_legacy_mcp_session_is_a_nexus_session(app: Nexus, http: httpx.Client) -> None:
    progress: list[str | None] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with Client(f"{app.url}/mcp", mode="legacy") as client:
        first = await client.call_tool("whoami", {}, progress_callback=on_progress)
        second = await client.call_tool("whoami", {})
    runs = [http.get(f"/runs/{r.meta['nexus/run_id']}").json() for r in (first, second)]  # type: ignore[index]
    summaries = http.get("/runs", params={"workflow": "whoami", "limit": 10}).json()["runs"]
    sessions = {s["run_id"]: s["session_id"] for s in summaries}
    sid = sessions[runs[0]["run_id"]]
    assert sid is not None and sessions[runs[1]["run_id"]] == sid  # both calls ran in one session
    events = [e["type"] for e in http.get(f"/sessions/{sid}/events", params={"follow": "false"}).json()["events"]]
    assert events == ["session.created", "session.run_completed", "session.run_completed"]


async def test_every_example_workflow_over_mcp(app: Nexus) -> None:
    async with Client(f"{app.url}/mcp") as client:
        doubled = await client.call_tool("double_plus_one", {"x": 20})
        greeted = await client.call_tool("greet", {"name": "Ada", "excited": True})
        big = await client.call_tool("route_order", {"input_data": {"amount": 150}})
        small = await client.call_tool("route_order", {"input_data": {"amount": 20}})
        health = await client.call_tool("check_health", {"url": f"{app.url}/health"})
    assert doubled.structured_content["add_one"] == {"result": {"value": 41}}  # type: ignore[index]
    assert greeted.structured_content == {"greet": {"result": "Hello, Ada!"}}
    assert big.structured_content["needs_approval"]["result"] == {"action": "approve", "order": {"amount": 150}}  # type: ignore[index]
    assert "ship" not in big.structured_content  # type: ignore[operator]
    assert small.structured_content["ship"]["result"] == {"action": "ship", "order": {"amount": 20}}  # type: ignore[index]
    assert health.structured_content["verdict"] == {"result": {"healthy": True, "status": 200}}  # type: ignore[index]
    for result in (doubled, greeted, big, small, health):
        assert not result.is_error and json.loads(result.content[0].text) == result.structured_content  # type: ignore[union-attr]


async def test_stdio_app_with_auth_acts_as_the_token_holder(app: Nexus, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    import jwt
    import ray
    from mcp import StdioServerParameters

    from .conftest import ROOT

    secret = "stdio-secret-" + "s" * 32
    env = {
        **os.environ,
        "RAY_ADDRESS": ray.get_runtime_context().gcs_address,
        "NEXUS_HOME": str(tmp_path),
        "NEXUS_ENV": "production",
        "NEXUS_JWT_SECRET": secret,
    }
    nexus = str(Path(sys.executable).parent / "nexus")
    secure_app = str(ROOT / "tests" / "integration" / "secure_app.py")
    no_token = subprocess.run([nexus, "mcp", "--app", secure_app], env=env, capture_output=True, text=True, timeout=120)
    assert no_token.returncode == 9 and "No credential" in no_token.stderr
    viewer = jwt.encode({"sub": "vic", "tenant": "acme", "roles": ["viewer"], "exp": time.time() + 600}, secret)
    params = StdioServerParameters(command=nexus, args=["mcp", "--app", secure_app, "--token", viewer], env=env)
    async with Client(params, read_timeout_seconds=120) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        refused = await client.call_tool("double_plus_one", {"x": 1})
    assert "double_plus_one" not in names and "nexus_run_status" in names
    assert refused.is_error and "Permission 'execute'" in refused.content[0].text  # type: ignore[union-attr]
