"""The REST app in-process (Starlette TestClient, RunService without Ray)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from nexus_ray import Nexus, Settings, WorkflowBuilder
from nexus_ray.channels.http.app import build_http_app, catalog_digest
from nexus_ray.runtime.ids import new_run_id, request_hash
from nexus_ray.runtime.run_service import RunService
from nexus_ray.runtime.session_service import SessionService
from nexus_ray.security.principal import DEFAULT_TENANT
from nexus_ray.security.tenancy import scoped, scoped_key
from nexus_ray.store import Store
from nexus_ray.store.backends import SQLiteBackend

from .helpers import TWO_NODE_EVENTS, double_plus_one


class InProcessRunner:
    """The RunGateway over a RunService in this process (no Ray)."""

    def __init__(self, service: RunService) -> None:
        self.service = service

    async def execute(self, name: str, node_inputs: dict[str, Any], run_id: str) -> dict[str, Any]:
        return await self.service.execute(name, node_inputs, run_id)

    async def start(self, name: str, node_inputs: dict[str, Any], run_id: str) -> dict[str, Any]:
        return await self.service.start(name, node_inputs, run_id)

    async def execute_idempotent(
        self, key: str, name: str, node_inputs: dict[str, Any], wait: bool, tenant: str = DEFAULT_TENANT
    ) -> dict[str, Any]:
        digest = request_hash(name, node_inputs)
        run_id = scoped(new_run_id(), tenant)
        return await self.service.execute_idempotent(scoped_key(key, tenant), digest, name, node_inputs, run_id, wait)

    async def get_run(self, run_id: str) -> dict[str, Any]:
        return await self.service.get_run(run_id)

    async def wait_events(self, run_id: str, after: int, timeout_s: float) -> tuple[list[dict[str, Any]], bool]:
        return await self.service.wait_events(run_id, after, timeout_s)

    async def health(self) -> list[dict[str, Any]]:
        return [await self.service.health()]

    async def metrics_text(self) -> list[str]:
        return [self.service.metrics_text()]

    async def execute_in_session(
        self,
        name: str,
        inputs: dict[str, Any],
        session_id: str,
        wait: bool,
        idempotency_key: str | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> dict[str, Any]:
        run_id = scoped(new_run_id(), tenant)
        if idempotency_key is None:
            return await self.service.execute_in_session(name, inputs, run_id, session_id, wait)
        digest = request_hash(name, {"inputs": inputs, "session_id": session_id})
        return await self.service.execute_idempotent_in_session(
            scoped_key(idempotency_key, tenant), digest, name, inputs, run_id, session_id, wait
        )

    async def cancel(self, run_id: str) -> dict[str, Any]:
        return await self.service.cancel(run_id)

    async def list_runs(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        return await self.service.list_runs(**filters)


class InProcessSessions:
    """The SessionGateway over a SessionService in this process (no dedicated actors here)."""

    def __init__(self, service: SessionService) -> None:
        self.service = service
        self.get, self.patch, self.delete, self.list = service.get, service.patch, service.delete, service.list
        self.wait_events = service.wait_events

    async def health(self) -> list[dict[str, Any]]:
        return [await self.service.health()]

    async def metrics_text(self) -> list[str]:
        return [self.service.metrics_text()]

    async def create(
        self,
        state: dict[str, Any] | None,
        ttl_s: float | None,
        dedicated: bool | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> dict[str, Any]:
        return await self.service.create(state, ttl_s, session_id=scoped(new_run_id(), tenant))

    async def call(self, method: str, session_id: str, *args: Any) -> Any:
        """The SessionCaller a RunService uses (complete_run has the host's signature)."""
        return await getattr(self.service, method)(*args)


async def nap(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = Nexus(port=0)
    app.register("nap", nap)
    app.register("double_plus_one", double_plus_one(), description="x -> 2x + 1")
    failing = WorkflowBuilder().add_node("PythonCodeNode", "explode", {"code": "result = 1 / zero"})
    app.register("fails", failing)

    @app.workflow
    def greet(name: str, excited: bool = False) -> str:
        return f"Hello, {name}{'!' if excited else '.'}"

    workflows = {name: item.workflow for name, item in app.workflows.items()}
    db = tmp_path_factory.mktemp("store") / "nexus.db"
    sessions = SessionService("s0", lambda: Store(SQLiteBackend(db)))
    gateway = InProcessSessions(sessions)
    service = RunService("h0", workflows, store_factory=lambda: Store(SQLiteBackend(db)), sessions=gateway)
    http_app = build_http_app(app.workflows, InProcessRunner(service), gateway, Settings(max_body_bytes=16384))
    with TestClient(http_app) as client:
        yield client  # one event loop for the whole module: async runs outlive their request
    service.close()
    sessions.close()


def test_execute_returns_outputs(client: TestClient) -> None:
    r = client.post("/workflows/double_plus_one/execute", json={"inputs": {"x": 5}})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "completed" and body["workflow"] == "double_plus_one"
    assert body["outputs"]["add_one"]["result"]["value"] == 11
    assert len(body["run_id"]) == 32 and body["duration_ms"] > 0
    assert body["nodes"]["double"]["status"] == "completed"


def test_failed_node_is_200_with_error(client: TestClient) -> None:
    r = client.post("/workflows/fails/execute", json={"inputs": {"zero": 0}})
    assert r.status_code == 200
    assert r.json()["status"] == "failed"
    assert r.json()["error"] == {"node": "explode", "type": "ZeroDivisionError", "message": "division by zero"}


def problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body  # type: ignore[no-any-return]


def test_unknown_workflow_404_with_close_matches(client: TestClient) -> None:
    body = problem(client.post("/workflows/double_plus_on/execute", json={"inputs": {}}), 404)
    assert body["close_matches"] == ["double_plus_one"]


def test_missing_and_mistyped_inputs_422_list_each_field(client: TestClient) -> None:
    body = problem(client.post("/workflows/greet/execute", json={"inputs": {"excited": "very"}}), 422)
    assert {(e["field"], e["type"]) for e in body["errors"]} == {("name", "missing"), ("excited", "bool_parsing")}


def test_inputs_outside_envelope_are_named(client: TestClient) -> None:
    body = problem(client.post("/workflows/greet/execute", json={"name": "bob"}), 422)
    assert body["errors"][0]["field"] == "body.name"
    assert '"inputs"' in body["errors"][0]["message"]


def test_body_not_an_object_422(client: TestClient) -> None:
    problem(client.post("/workflows/greet/execute", json=[1]), 422)


def test_malformed_json_400(client: TestClient) -> None:
    body = problem(
        client.post("/workflows/greet/execute", content=b'{"inputs": {', headers={"content-type": "application/json"}),
        400,
    )
    assert "Malformed JSON" in body["detail"]


def test_body_over_limit_413(client: TestClient) -> None:
    payload = {"inputs": {"name": "x" * 20000}}
    body = problem(client.post("/workflows/greet/execute", json=payload), 413)
    assert body["limit_bytes"] == 16384


def test_unknown_route_and_method_are_problems(client: TestClient) -> None:
    problem(client.get("/nothing/here"), 404)
    problem(client.get("/workflows/greet/execute"), 405)


def test_empty_body_means_no_inputs(client: TestClient) -> None:
    body = problem(client.post("/workflows/greet/execute"), 422)
    assert body["errors"][0]["field"] == "name"


def test_list_workflows(client: TestClient) -> None:
    r = client.get("/workflows")
    assert r.status_code == 200
    items = {w["name"]: w for w in r.json()}
    assert set(items) == {"double_plus_one", "fails", "greet", "nap"}
    assert items["double_plus_one"]["description"] == "x -> 2x + 1"
    assert items["greet"]["input_schema"]["required"] == ["name"]
    assert items["greet"]["output_schema"]["properties"]["greet"]["properties"]["result"] == {"type": "string"}


def test_openapi_has_one_route_per_workflow_with_its_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = {w["name"]: w["input_schema"] for w in client.get("/workflows").json()}
    for name in ("double_plus_one", "fails", "greet"):
        op = spec["paths"][f"/workflows/{name}/execute"]["post"]
        body_schema = op["requestBody"]["content"]["application/json"]["schema"]
        assert body_schema["properties"]["inputs"] == schemas[name]
        assert {"200", "202", "400", "409", "413", "422"} <= set(op["responses"])
    assert "/workflows/{name}/execute" not in spec["paths"]
    greet = spec["paths"]["/workflows/greet/execute"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert greet["properties"]["inputs"]["properties"]["excited"] == {
        "type": "boolean",
        "default": False,
        "description": "Input 'excited' of node(s) greet",
    }
    assert client.get("/docs").status_code == 200


def test_health(client: TestClient) -> None:
    names = ["double_plus_one", "fails", "greet", "nap"]
    assert client.get("/health").json() == {"status": "ok", "catalog": catalog_digest(names)}


def wait_status(client: TestClient, run_id: str, status: str, timeout: float = 5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(f"/runs/{run_id}").json()
        if body["status"] == status:
            return body  # type: ignore[no-any-return]
        time.sleep(0.02)
    raise AssertionError(f"run {run_id} not {status}: {body}")


def test_async_mode_202_then_poll(client: TestClient) -> None:
    r = client.post("/workflows/double_plus_one/execute", json={"inputs": {"x": 2}, "mode": "async"})
    assert r.status_code == 202
    run_id = r.json()["run_id"]
    assert r.headers["location"] == f"/runs/{run_id}" and r.json()["status"] in ("pending", "running")
    body = wait_status(client, run_id, "completed")
    assert body["outputs"]["add_one"]["result"]["value"] == 5
    assert body["nodes"]["double"]["status"] == "completed" and body["nodes"]["double"]["duration_ms"] >= 0


def test_bad_mode_is_422(client: TestClient) -> None:
    body = problem(client.post("/workflows/greet/execute", json={"inputs": {"name": "a"}, "mode": "later"}), 422)
    assert body["errors"][0]["field"] == "body.mode"


def test_unknown_run_404(client: TestClient) -> None:
    assert problem(client.get("/runs/nope"), 404)["run_id"] == "nope"
    problem(client.post("/runs/nope/cancel"), 404)


@pytest.mark.parametrize("junk", ["a\x00b", "\ud800", "nope-d"])
def test_ids_no_run_or_session_can_have_are_404_on_every_channel(client: TestClient, junk: str) -> None:
    # A NUL failed on PostgreSQL (503), a lone surrogate in the problem's JSON (500).
    body = json.dumps({"inputs": {"x": 1}, "session_id": junk})  # ensure_ascii: "\ud800" as JSON sends it
    sent = client.post("/workflows/double_plus_one/execute", content=body, headers={"content-type": "application/json"})
    assert problem(sent, 404)["session_id"] == junk
    assert (
        client.get("/sessions/" + quote(junk, errors="surrogatepass")).status_code == 404
        and client.get("/runs/" + quote(junk, errors="surrogatepass")).status_code == 404
    )
    with client.websocket_connect("/ws/double_plus_one") as ws:  # its error frame ended the socket
        for message in ({"inputs": {"x": 1}, "session_id": junk}, {"cancel": junk}):
            ws.send_text(json.dumps(message))
            assert ws.receive_json()["error"]["status"] == 404
        ws.send_json({"inputs": {"x": 2}})
        assert ws.receive_json()["type"] == "run.started"
    headers = {
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
        "host": "127.0.0.1:8000",
    }
    call = {"name": "nexus_get_session", "arguments": {"session_id": junk}}
    r = client.post(
        "/mcp", content=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call}), headers=headers
    )
    if junk == "\ud800":  # the MCP SDK's JSON parser refuses it: a JSON-RPC parse error
        assert r.status_code == 400 and r.json()["error"]["code"] == -32700
        return
    result = json.loads(next(line[6:] for line in r.text.splitlines() if line.startswith("data: ")))["result"]
    assert result["isError"] and result["_meta"]["nexus/error"]["status"] == 404


def test_cancel_running_then_conflict(client: TestClient) -> None:
    run_id = client.post("/workflows/nap/execute", json={"inputs": {"seconds": 30}, "mode": "async"}).json()["run_id"]
    wait_status(client, run_id, "running")
    started = time.monotonic()
    r = client.post(f"/runs/{run_id}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert time.monotonic() - started < 2
    assert client.get(f"/runs/{run_id}").json()["status"] == "cancelled"
    assert problem(client.post(f"/runs/{run_id}/cancel"), 409)["run_status"] == "cancelled"


def test_list_runs_filters_and_cursor(client: TestClient) -> None:
    ids = [
        client.post("/workflows/greet/execute", json={"inputs": {"name": str(i)}}).json()["run_id"] for i in range(3)
    ]
    page = client.get("/runs", params={"workflow": "greet", "limit": 2}).json()
    assert [r["run_id"] for r in page["runs"]] == ids[::-1][:2]
    assert page["runs"][0]["status"] == "completed" and "outputs" not in page["runs"][0]
    rest = client.get("/runs", params={"workflow": "greet", "limit": 2, "cursor": page["next_cursor"]}).json()
    assert ids[0] in [r["run_id"] for r in rest["runs"]]
    failed = client.get("/runs", params={"status": "failed"}).json()["runs"]
    assert all(r["status"] == "failed" for r in failed)
    problem(client.get("/runs", params={"status": "bogus"}), 422)
    assert problem(client.get("/runs", params={"limit": 0}), 422)["detail"].startswith("Invalid request: query.limit.")


@pytest.mark.parametrize("path", ["/runs", "/sessions"])
def test_a_cursor_that_is_no_id_is_refused_not_read_as_the_first_page(client: TestClient, path: str) -> None:
    client.post("/workflows/greet/execute", json={"inputs": {"name": "a"}})
    client.post("/sessions", json={"state": {}})
    body = problem(client.get(path, params={"cursor": "zz"}), 400)
    assert body["field"] == "cursor" and "'zz' is not a" in body["detail"]


def test_idempotency_key_same_request_same_run(client: TestClient) -> None:
    key = {"Idempotency-Key": "order-1"}
    first = client.post("/workflows/double_plus_one/execute", json={"inputs": {"x": 3}}, headers=key).json()
    again = client.post("/workflows/double_plus_one/execute", json={"inputs": {"x": 3}}, headers=key).json()
    assert first["run_id"] == again["run_id"] and again["outputs"]["add_one"]["result"]["value"] == 7
    body = problem(client.post("/workflows/double_plus_one/execute", json={"inputs": {"x": 4}}, headers=key), 409)
    assert body["idempotency_key"] == "order-1" and body["run_id"] == first["run_id"]


def test_idempotency_key_while_running(client: TestClient) -> None:
    key = {"Idempotency-Key": "slow-1"}
    request = {"inputs": {"seconds": 0.5}, "mode": "async"}
    started = client.post("/workflows/nap/execute", json=request, headers=key)
    repeat = client.post("/workflows/nap/execute", json=request, headers=key)
    assert started.status_code == repeat.status_code == 202
    assert repeat.json() == {"run_id": started.json()["run_id"], "status": "running"}
    sync = client.post("/workflows/nap/execute", json={"inputs": {"seconds": 0.5}}, headers=key).json()
    assert sync["run_id"] == started.json()["run_id"] and sync["status"] == "completed"


@pytest.mark.parametrize("body", [{"ttl_s": True}, {"ttl_s": "600"}, {"dedicated": "yes"}, {"state": {}, "ttl_s": 0}])
def test_a_session_is_created_only_from_a_well_typed_body(client: TestClient, body: dict[str, Any]) -> None:
    field = next(iter(set(body) - {"state"}))
    r = client.post("/sessions", json=body)
    assert problem(r, 422)["errors"][0]["field"] == f"body.{field}"


def test_a_number_beyond_a_float_s_range_is_refused_where_python_would_read_infinity(client: TestClient) -> None:
    r = client.post("/sessions", content=b'{"ttl_s": 1e999}', headers={"content-type": "application/json"})
    assert problem(r, 400)["number"] == "1e999"


def test_a_last_event_id_must_be_ascii_digits(client: TestClient) -> None:
    run_id = client.post("/workflows/greet/execute", json={"inputs": {"name": "a"}}).json()["run_id"]
    r = client.get(f"/runs/{run_id}/events", params={"follow": "false"}, headers={"Last-Event-ID": b"\xb2"})
    assert problem(r, 400)["header"] == "Last-Event-ID"


def test_bad_idempotency_key_400(client: TestClient) -> None:
    r = client.post("/workflows/greet/execute", json={"inputs": {"name": "a"}}, headers={"Idempotency-Key": "x" * 300})
    assert problem(r, 400)["header"] == "Idempotency-Key"


def test_sessions_over_rest(client: TestClient) -> None:
    r = client.post("/sessions", json={"state": {"cart": []}, "ttl_s": 600})
    assert r.status_code == 201 and r.headers["etag"] == '"1"'
    sid = r.json()["session_id"]
    assert r.headers["location"] == f"/sessions/{sid}"
    assert client.get(f"/sessions/{sid}").json()["state"] == {"cart": []}
    patched = client.patch(f"/sessions/{sid}", json={"cart": [1], "user": "ada"}, headers={"If-Match": '"1"'})
    assert patched.status_code == 200 and patched.json()["version"] == 2 and patched.headers["etag"] == '"2"'
    stale = problem(client.patch(f"/sessions/{sid}", json={"x": 1}, headers={"If-Match": "1"}), 412)
    assert stale["current_version"] == 2
    for bad in ("latest", "0", b"\xb2"):  # b"\xb2" is "²", a digit to str.isdigit() but not to int()
        assert problem(client.patch(f"/sessions/{sid}", json={"x": 1}, headers={"If-Match": bad}), 400)["header"]
    anything = client.patch(f"/sessions/{sid}", json={"n": 1}, headers={"If-Match": "*"})
    assert anything.status_code == 200 and anything.json()["version"] == 3
    problem(client.patch(f"/sessions/{sid}", json={"n": None}, headers={"If-Match": '"2"'}), 412)
    client.patch(f"/sessions/{sid}", json={"n": None})
    problem(client.patch(f"/sessions/{sid}", json=[1]), 400)
    removed = client.patch(f"/sessions/{sid}", json={"user": None}).json()
    assert removed["state"] == {"cart": [1]} and removed["version"] == 5
    listed = client.get("/sessions", params={"limit": 500}).json()["sessions"]
    assert sid in [s["session_id"] for s in listed]
    assert client.delete(f"/sessions/{sid}").status_code == 204
    problem(client.get(f"/sessions/{sid}"), 404)
    problem(client.delete(f"/sessions/{sid}"), 404)


def test_session_creation_errors(client: TestClient) -> None:
    assert problem(client.post("/sessions", json={"state": [], "ttl_s": -1}), 422)["errors"]
    assert problem(client.post("/sessions", json={"stat": {}}), 422)["errors"][0]["field"] == "body.stat"
    assert client.post("/sessions").status_code == 201  # no body: an empty session


def test_idempotency_key_with_a_session(client: TestClient) -> None:
    sid = client.post("/sessions", json={"state": {"name": "Ada"}}).json()["session_id"]
    other = client.post("/sessions", json={"state": {"name": "Bob"}}).json()["session_id"]
    key = {"Idempotency-Key": "in-session-1"}
    body = {"inputs": {"excited": True}, "session_id": sid}
    first = client.post("/workflows/greet/execute", json=body, headers=key).json()
    assert first["outputs"]["greet"]["result"] == "Hello, Ada!"
    client.patch(f"/sessions/{sid}", json={"name": "Eve"})  # the request, not the state, is what counts
    again = client.post("/workflows/greet/execute", json=body, headers=key).json()
    assert again["run_id"] == first["run_id"] and again["outputs"]["greet"]["result"] == "Hello, Ada!"
    moved = problem(client.post("/workflows/greet/execute", json={**body, "session_id": other}, headers=key), 409)
    assert moved["run_id"] == first["run_id"]
    problem(client.post("/workflows/greet/execute", json={"inputs": {}, "session_id": sid}, headers=key), 409)
    listed = client.get("/runs", params={"session_id": sid}).json()["runs"]
    assert [r["run_id"] for r in listed] == [first["run_id"]]


def sse(response: Any) -> list[dict[str, Any]]:
    """The events of an SSE response, checking each frame's id and event lines."""
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = []
    for frame in response.text.replace("\r\n", "\n").split("\n\n"):
        fields = dict(line.split(": ", 1) for line in frame.splitlines() if line and not line.startswith(":"))
        if "data" in fields:
            event = json.loads(fields["data"])
            assert fields["id"] == str(event["seq"]) and fields["event"] == event["type"]
            events.append(event)
    return events


def test_stream_mode_sends_every_event_as_sse_ending_with_the_outputs(client: TestClient) -> None:
    r = client.post("/workflows/double_plus_one/execute", json={"inputs": {"x": 5}, "mode": "stream"})
    events = sse(r)
    assert [e["type"] for e in events] == TWO_NODE_EVENTS
    assert [e["seq"] for e in events] == list(range(1, 7))
    assert events[-1]["data"]["outputs"]["add_one"]["result"]["value"] == 11
    by_accept = client.post(
        "/workflows/greet/execute", json={"inputs": {"name": "a"}}, headers={"Accept": "text/event-stream"}
    )
    assert sse(by_accept)[-1]["data"]["outputs"]["greet"]["result"] == "Hello, a."


def test_run_events_resume_after_last_event_id_with_nothing_repeated(client: TestClient) -> None:
    run_id = client.post("/workflows/double_plus_one/execute", json={"inputs": {"x": 1}}).json()["run_id"]
    everything = sse(client.get(f"/runs/{run_id}/events"))
    rest = sse(client.get(f"/runs/{run_id}/events", headers={"Last-Event-ID": "2"}))
    assert rest == everything[2:]
    assert sse(client.get(f"/runs/{run_id}/events", params={"after": 5})) == everything[5:]
    assert problem(client.get("/runs/nope/events"), 404)["run_id"] == "nope"
    assert problem(client.get(f"/runs/{run_id}/events", headers={"Last-Event-ID": "x"}), 400)["header"]


def test_websocket_runs_stream_events_and_bad_messages_get_errors(client: TestClient) -> None:
    with client.websocket_connect("/ws/double_plus_one") as ws:
        ws.send_text("not json")
        assert ws.receive_json()["type"] == "error"
        ws.send_json({"inputs": {}})
        invalid = ws.receive_json()
        assert invalid["type"] == "error" and invalid["error"]["status"] == 422
        ws.send_json({"inputs": {"x": 2}})
        ws.send_json({"inputs": {"x": 3}})
        ends: dict[str, Any] = {}
        while len(ends) < 2:
            event = ws.receive_json()
            assert {"type", "seq", "run_id"} <= set(event)
            if event["type"] == "run.completed":
                ends[event["run_id"]] = event["data"]["outputs"]["add_one"]["result"]["value"]
        assert sorted(ends.values()) == [5, 7]
    with client.websocket_connect("/ws/nope") as ws:
        assert ws.receive_json()["error"]["status"] == 404


def strict_json(text: str) -> Any:
    """What a standard parser (JavaScript's JSON.parse) makes of ``text``."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in a response that claims to be JSON: {text[:200]}")

    return json.loads(text, parse_constant=refuse)


def test_every_channel_speaks_standard_json(client: TestClient) -> None:
    execute = "/workflows/double_plus_one/execute"
    nan_body = b'{"inputs": {"x": NaN}}'
    refused = problem(client.post(execute, content=nan_body, headers={"content-type": "application/json"}), 400)
    assert refused["constant"] == "NaN" and "NaN is not JSON" in refused["detail"]
    huge_body = b'{"inputs": {"x": 1e400}}'  # Python's json reads infinity: the run would see inf
    huge = problem(client.post(execute, content=huge_body, headers={"content-type": "application/json"}), 400)
    assert huge["number"] == "1e400" and "the number 1e400 is out of range" in huge["detail"]
    deep = b'{"inputs": {"x": ' + b"[" * 5000 + b"]" * 5000 + b"}}"
    too_deep = problem(client.post(execute, content=deep, headers={"content-type": "application/json"}), 400)
    assert "nests too deep" in too_deep["detail"]
    deep_but_parsed = b'{"inputs": {"x": ' + b"[" * 500 + b"]" * 500 + b"}}"
    r = client.post(execute, content=deep_but_parsed, headers={"content-type": "application/json"})
    assert problem(r, 422)["errors"][0]["type"] == "too_deep"  # NEXUS_MAX_INPUT_DEPTH
    # 2 * 1e308 overflows to infinity: the run completes and the response says null
    r = client.post(execute, json={"inputs": {"x": 1e308}})
    body = strict_json(r.text)
    assert body["status"] == "completed" and body["outputs"]["double"]["result"]["value"] is None
    assert strict_json(client.get(f"/runs/{body['run_id']}").text)["outputs"] == body["outputs"]
    streamed = client.post(execute, json={"inputs": {"x": 1e308}, "mode": "stream"})
    frames = [line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert strict_json(frames[-1])["data"]["outputs"]["add_one"]["result"]["value"] is None
    with client.websocket_connect("/ws/double_plus_one") as ws:
        ws.send_text('{"inputs": {"x": Infinity}}')
        error = ws.receive_json()
        assert error["error"]["status"] == 400 and "Infinity is not JSON" in error["error"]["detail"]
        ws.send_text('{"inputs": {"x": -1e999}}')
        error = ws.receive_json()
        assert error["error"]["status"] == 400 and "-1e999 is out of range" in error["error"]["detail"]
        ws.send_json({"inputs": {"x": 1e308}})
        while (event := strict_json(ws.receive_text()))["type"] != "run.completed":
            pass
        assert event["data"]["outputs"]["double"]["result"]["value"] is None


def test_websocket_cancel(client: TestClient) -> None:
    with client.websocket_connect("/ws/nap") as ws:
        ws.send_json({"inputs": {"seconds": 5}})
        started = ws.receive_json()
        assert started["type"] == "run.started"
        ws.send_json({"cancel": started["run_id"]})
        types = []
        while not types or types[-1] != "run.cancelled":
            types.append(ws.receive_json()["type"])
        assert "run.completed" not in types


def test_two_session_subscribers_both_receive_an_update_made_over_rest(client: TestClient) -> None:
    sid = client.post("/sessions", json={"state": {"n": 0}}).json()["session_id"]
    url = f"/ws/sessions/{sid}?after=1"
    with client.websocket_connect(url) as one, client.websocket_connect(url) as two:
        client.patch(f"/sessions/{sid}", json={"n": 1})
        for ws in (one, two):
            event = ws.receive_json()
            assert event["type"] == "session.updated" and event["data"] == {"state": {"n": 1}, "version": 2}
            assert event["session_id"] == sid and event["seq"] == 2
    client.post("/workflows/greet/execute", json={"inputs": {"name": "z"}, "session_id": sid})
    with client.websocket_connect(f"/ws/sessions/{sid}") as follower:
        replayed = [follower.receive_json()["type"] for _ in range(3)]
        assert replayed == ["session.created", "session.updated", "session.run_completed"]
        client.delete(f"/sessions/{sid}")
        assert follower.receive_json()["type"] == "session.deleted"
        assert follower.receive()["type"] == "websocket.close"  # the stream ends there
    # Deleted: the log keeps only its end (it held every state), in memory and in the store.
    assert [(e["seq"], e["type"]) for e in sse(client.get(f"/sessions/{sid}/events"))] == [(4, "session.deleted")]
    page = client.get(f"/sessions/{sid}/events", params={"follow": "false"}).json()
    assert page["ended"] is True and [e["type"] for e in page["events"]] == ["session.deleted"]


def test_ready_reports_every_dependency(client: TestClient) -> None:
    r = client.get("/ready")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ready",
        "checks": {"serve": "ok", "ray": "ok", "run_hosts": "ok", "session_hosts": "ok", "store": "ok"},
        "ingress_replicas": None,  # no Serve in this process
        "host_pools": {"run": 1, "session": 1},
    }


def test_metrics_count_requests_and_runs(client: TestClient) -> None:
    client.post("/workflows/double_plus_one/execute", json={"inputs": {"x": 2}})
    client.post("/workflows/double_plus_one/execute", json={"inputs": {"x": "bad", "y": 1}})
    text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = {
        (s.labels["route"], s.labels["status"]): s.value
        for s in families["nexus_http_requests"].samples
        if s.name.endswith("_total")
    }
    assert requests[("/workflows/double_plus_one/execute", "200")] >= 1
    runs = {
        (s.labels["workflow"], s.labels["status"]): s.value
        for s in families["nexus_runs"].samples
        if s.name.endswith("_total")
    }
    assert runs[("double_plus_one", "completed")] >= 1
    nodes = [s for s in families["nexus_node_duration_seconds"].samples if s.name.endswith("_count")]
    assert {s.labels["node"] for s in nodes if s.labels["workflow"] == "double_plus_one"} == {"double", "add_one"}
    assert "nexus_sessions_active" in families and "nexus_http_request_duration_seconds" in families
    pools = {s.labels["pool"]: s.value for s in families["nexus_host_pool_size"].samples}
    assert pools == {"run": 1, "session": 1}


def test_describe_a_workflow_with_its_graph(client: TestClient) -> None:
    body = client.get("/workflows/double_plus_one").json()
    assert body["input_schema"]["properties"]["x"] and body["description"] == "x -> 2x + 1"
    assert [n["id"] for n in body["graph"]["nodes"]] == ["double", "add_one"]
    assert body["graph"]["edges"] == [{"from": "double", "output": "result.value", "to": "add_one", "input": "value"}]
    assert problem(client.get("/workflows/double_plus_on"), 404)["detail"]


def test_cors_is_off_by_default_and_configurable() -> None:
    app = Nexus(port=0)
    app.register("nap", nap)
    runner, sessions = InProcessRunner(None), InProcessSessions.__new__(InProcessSessions)  # type: ignore[arg-type]
    preflight = {"Origin": "https://ui.example", "Access-Control-Request-Method": "POST"}
    plain = TestClient(build_http_app(app.workflows, runner, sessions, Settings()))
    assert "access-control-allow-origin" not in plain.options("/workflows/nap/execute", headers=preflight).headers
    allowed = TestClient(build_http_app(app.workflows, runner, sessions, Settings(cors_origins=["https://ui.example"])))
    r = allowed.options("/workflows/nap/execute", headers=preflight)
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://ui.example"


def test_a_deeply_nested_mcp_body_is_a_json_rpc_error_not_a_500(client: TestClient) -> None:
    deep = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    headers["host"] = "127.0.0.1:8000"  # one /mcp accepts (DNS-rebinding protection)
    r = client.post("/mcp", content=deep, headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == -32700, r.text  # JSON-RPC's parse error


def test_nan_and_infinity_in_mcp_arguments_are_refused_as_rest_refuses_them(client: TestClient) -> None:
    """The MCP SDK reads NaN, Infinity and 1e400 as floats (REST refuses them as not JSON)."""
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    headers["host"] = "127.0.0.1:8000"
    sid = client.post("/sessions", json={"state": {"n": 1}}).json()["session_id"]

    def call(tool: str, arguments: str) -> dict[str, Any]:
        params = f'{{"name": "{tool}", "arguments": {arguments}}}'
        body = f'{{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {params}}}'
        r = client.post("/mcp", content=body, headers=headers)
        data = next(line[6:] for line in r.text.splitlines() if line.startswith("data: "))
        return json.loads(data)["result"]  # type: ignore[no-any-return]

    for number in ("NaN", "1e400", "-Infinity"):
        refused = call("double_plus_one", f'{{"x": {number}}}')
        assert refused["isError"] and refused["_meta"]["nexus/error"]["status"] == 422
        assert refused["content"][0]["text"].startswith("Invalid arguments: x: is NaN or infinite")
    patched = call("nexus_update_session", f'{{"session_id": "{sid}", "patch": {{"n": [1, NaN]}}}}')
    assert patched["isError"] and "patch.n[1]: is NaN or infinite" in patched["content"][0]["text"]
    assert client.get(f"/sessions/{sid}").json()["version"] == 1  # nothing was written
    assert call("double_plus_one", '{"x": 1.5}')["structuredContent"]["add_one"]["result"]["value"] == 4.0


def test_mcp_bodies_over_the_limit_are_413(client: TestClient) -> None:
    big = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "greet", "arguments": {"name": "x" * 20000}},
    }
    r = client.post("/mcp", json=big, headers={"accept": "application/json, text/event-stream"})
    assert r.status_code == 413 and r.json()["limit_bytes"] == 16384


def test_websocket_messages_over_the_limit_are_refused(client: TestClient) -> None:
    with client.websocket_connect("/ws/greet") as ws:
        ws.send_text(json.dumps({"inputs": {"name": "x" * 20000}}))
        reply = ws.receive_json()
        assert reply["type"] == "error" and reply["error"]["status"] == 413
        ws.send_text(json.dumps({"inputs": {"name": "ok"}}))  # the socket still serves
        assert ws.receive_json()["type"] == "run.started"
