"""Every example over REST through the real Serve ingress, and every error case."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
from typing import Any

import httpx
import pytest

from nexus_ray import Nexus, Settings, WorkflowBuilder
from nexus_ray.channels.http.app import catalog_digest
from nexus_ray.errors import ConflictError
from nexus_ray.testing import free_port

from .conftest import BODY_LIMIT


def execute(http: httpx.Client, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    r = http.post(f"/workflows/{name}/execute", json={"inputs": inputs})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    return r.json()  # type: ignore[no-any-return]


def test_uses_haproxy_ingress_when_available(app: Nexus) -> None:
    server = app.start()  # idempotent: returns the running server's info
    expected = "HAProxy" if shutil.which("haproxy") else "Serve default proxy"
    assert server.ingress == expected
    assert server.ray == "embedded local Ray"


def test_a_second_app_serving_from_this_process_is_refused(app: Nexus, http: httpx.Client) -> None:
    # One Serve ingress per cluster: the second app must not silently replace the first's.
    other = Nexus(settings=Settings(port=free_port()))
    other.register("only_in_other", WorkflowBuilder().add_node("PythonCodeNode", "n", {"code": "result = 1"}))
    with pytest.raises(ConflictError, match=f"already serves from this process, at {app.url}"):
        other.start()
    assert Nexus.serving() is app
    other.stop()  # it started nothing: stopping it leaves the shared app alone
    names = {w["name"] for w in http.get("/workflows").json()}
    assert "double_plus_one" in names and "only_in_other" not in names
    assert execute(http, "double_plus_one", {"x": 1})["outputs"]["add_one"]["result"]["value"] == 3


def test_double_plus_one(http: httpx.Client) -> None:
    body = execute(http, "double_plus_one", {"x": 5})
    assert body["status"] == "completed" and body["workflow"] == "double_plus_one"
    assert body["outputs"]["add_one"]["result"]["value"] == 11
    assert body["outputs"]["double"]["result"]["value"] == 10
    assert body["duration_ms"] > 0 and len(body["run_id"]) == 32


def test_typed_function_workflow(http: httpx.Client) -> None:
    assert execute(http, "greet", {"name": "Ada"})["outputs"]["greet"]["result"] == "Hello, Ada."
    assert execute(http, "greet", {"name": "Ada", "excited": True})["outputs"]["greet"]["result"] == "Hello, Ada!"


@pytest.mark.parametrize(
    ("amount", "taken", "skipped", "action"),
    [(150, "needs_approval", "ship", "approve"), (20, "ship", "needs_approval", "ship")],
)
def test_switch_workflow(http: httpx.Client, amount: int, taken: str, skipped: str, action: str) -> None:
    body = execute(http, "route_order", {"input_data": {"amount": amount}})
    assert body["outputs"][taken]["result"] == {"action": action, "order": {"amount": amount}}
    assert skipped not in body["outputs"]
    assert body["nodes"][skipped]["status"] == "skipped"
    assert "route" in body["nodes"][skipped]["reason"]


def test_http_workflow_against_own_health(app: Nexus, http: httpx.Client) -> None:
    body = execute(http, "check_health", {"url": f"{app.url}/health"})
    assert body["outputs"]["fetch"]["status"] == 200
    assert body["outputs"]["fetch"]["body"]["status"] == "ok"
    assert body["outputs"]["verdict"]["result"] == {"healthy": True, "status": 200}


def test_runs_execute_in_a_run_host_actor(app: Nexus, http: httpx.Client) -> None:
    pid = execute(http, "whoami", {})["outputs"]["whoami"]["result"]
    host_pids = {info["pid"] for info in app._pool.info()}
    assert pid in host_pids and pid != os.getpid()


def test_failing_node_is_200_failed_naming_node(http: httpx.Client) -> None:
    body = execute(http, "fails", {})
    assert body["status"] == "failed"
    assert body["error"] == {"node": "explode", "type": "ZeroDivisionError", "message": "division by zero"}
    assert body["outputs"] == {"prepare": {"result": 0}}


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["type"] and body["title"] and body["detail"]
    return body  # type: ignore[no-any-return]


def test_unknown_workflow_404(http: httpx.Client) -> None:
    body = assert_problem(http.post("/workflows/gret/execute", json={"inputs": {}}), 404)
    assert body["close_matches"] == ["greet"]


def test_missing_and_mistyped_inputs_422(http: httpx.Client) -> None:
    body = assert_problem(http.post("/workflows/greet/execute", json={"inputs": {"excited": [1]}}), 422)
    assert {e["field"] for e in body["errors"]} == {"name", "excited"}


def test_malformed_json_400(http: httpx.Client) -> None:
    r = http.post("/workflows/greet/execute", content=b"{not json", headers={"content-type": "application/json"})
    assert "Malformed JSON" in assert_problem(r, 400)["detail"]


def test_body_over_limit_413(http: httpx.Client) -> None:
    payload = json.dumps({"inputs": {"name": "x" * (BODY_LIMIT + 10)}}).encode()
    assert assert_problem(http.post("/workflows/greet/execute", content=payload), 413)["limit_bytes"] == BODY_LIMIT


def test_unknown_route_404(http: httpx.Client) -> None:
    assert_problem(http.get("/no/such/route"), 404)


def test_list_workflows_and_health(http: httpx.Client) -> None:
    items = {w["name"]: w for w in http.get("/workflows").json()}
    assert http.get("/health").json() == {"status": "ok", "catalog": catalog_digest(items)}
    assert {"double_plus_one", "greet", "route_order", "check_health", "fails", "whoami"} <= set(items)
    assert items["double_plus_one"]["input_schema"]["required"] == ["x"]
    assert items["double_plus_one"]["description"] == "Double x, then add one."
    assert items["greet"]["input_schema"]["properties"]["name"]["type"] == "string"


def test_openapi_route_per_workflow(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    workflows = {w["name"]: w for w in http.get("/workflows").json()}
    for name, item in workflows.items():
        op = spec["paths"][f"/workflows/{name}/execute"]["post"]
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        assert schema["properties"]["inputs"] == item["input_schema"]
    assert http.get("/docs").status_code == 200


def test_concurrent_requests_all_correct(http: httpx.Client) -> None:
    def one(x: int) -> int:
        return execute(http, "double_plus_one", {"x": x})["outputs"]["add_one"]["result"]["value"]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        assert list(pool.map(one, range(64))) == [2 * x + 1 for x in range(64)]


def test_slow_run_does_not_hold_back_fast_ones(app: Nexus, http: httpx.Client) -> None:
    if "nap" not in app.workflows:

        async def nap(seconds: float) -> float:
            import asyncio

            await asyncio.sleep(seconds)
            return seconds

        app.register("nap", nap)

    def slow() -> float:
        return execute(http, "nap", {"seconds": 2.0})["outputs"]["nap"]["result"]

    def fast(x: int) -> tuple[int, float]:
        import time

        started = time.perf_counter()
        value = execute(http, "double_plus_one", {"x": x})["outputs"]["add_one"]["result"]["value"]
        return value, time.perf_counter() - started

    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        slow_future = pool.submit(slow)
        fast_results = list(pool.map(fast, range(40)))
        assert slow_future.result() == 2.0
    assert [v for v, _ in fast_results] == [2 * x + 1 for x in range(40)]
    assert max(t for _, t in fast_results) < 1.5
