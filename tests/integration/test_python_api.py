"""The same workflows from Python, and registration while serving."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from nexus_ray import (
    ConflictError,
    ExitCalledError,
    InputValidationError,
    InvalidRequestError,
    Nexus,
    RunStatus,
    WorkflowBuilder,
    WorkflowNotFoundError,
)
from nexus_ray.errors import WorkflowError
from nexus_ray.settings import Settings


def test_execute_every_example_from_python(app: Nexus) -> None:
    result = app.execute("double_plus_one", x=5)
    assert result.status == RunStatus.COMPLETED and result.ok
    assert result.outputs["add_one"]["result"]["value"] == 11
    assert app.execute("greet", {"name": "Bo"}, excited=True).outputs["greet"]["result"] == "Hello, Bo!"
    routed = app.execute("route_order", input_data={"amount": 100})
    assert routed.outputs["needs_approval"]["result"]["action"] == "approve"
    assert routed.nodes["ship"].status == "skipped"
    health = app.execute("check_health", url=f"{app.url}/health")
    assert health.outputs["verdict"]["result"]["healthy"] is True


def test_failed_run_from_python(app: Nexus) -> None:
    result = app.execute("fails")
    assert result.status == RunStatus.FAILED and not result.ok
    assert result.error == {"node": "explode", "type": "ZeroDivisionError", "message": "division by zero"}


def test_python_errors(app: Nexus) -> None:
    with pytest.raises(WorkflowNotFoundError):
        app.execute("nope")
    with pytest.raises(InputValidationError) as err:
        app.execute("greet", excited=True)
    assert err.value.errors[0]["field"] == "name"


class Opaque:
    """A value no JSON serializer knows (it pickles, so it reaches the store)."""


def test_state_that_cannot_be_stored_as_json_is_the_caller_s_mistake(app: Nexus) -> None:
    with pytest.raises(InvalidRequestError, match="cannot be stored as JSON"):
        app.create_session({"model": Opaque()})
    session = app.create_session({"n": 1})
    with pytest.raises(InvalidRequestError, match="cannot be stored as JSON"):
        app.update_session(session["session_id"], {"model": Opaque()})
    assert app.get_session(session["session_id"])["state"] == {"n": 1}


async def test_aexecute(app: Nexus) -> None:
    result = await app.aexecute("double_plus_one", {"x": 20})
    assert result.outputs["add_one"]["result"]["value"] == 41


async def test_the_async_api_has_every_run_option_of_the_sync_one(app: Nexus, tmp_path: Path) -> None:
    # aexecute() used to take no idempotency_key= or session_id= (both were read as
    # workflow inputs and refused), and runs had no async get, cancel, submit or list.
    first = await app.aexecute("double_plus_one", {"x": 1}, idempotency_key="async-key-1")
    again = await app.aexecute("double_plus_one", x=1, idempotency_key="async-key-1")
    assert again.run_id == first.run_id and again.outputs == first.outputs
    with pytest.raises(ConflictError):
        await app.aexecute("double_plus_one", x=2, idempotency_key="async-key-1")
    session = await app.acreate_session({"name": "ada", "visits": 0}, channel="notebook")
    sid = session["session_id"]
    visited = await app.aexecute("visit", session_id=sid)
    assert visited.ok and (await app.aget_session(sid))["state"]["visits"] == 1
    assert app.get_events(sid, "session.created")[0]["data"]["channel"] == "notebook"
    assert sid in [s["session_id"] for s in await app.alist_sessions(limit=500)]
    slow = await app.asubmit("three_steps", path=str(tmp_path / "steps.log"), seconds=30.0)
    assert (await app.aget_run(slow)).status in (RunStatus.PENDING, RunStatus.RUNNING)
    assert (await app.acancel(slow)).status == RunStatus.CANCELLED
    assert (await app.aget_run(slow)).status == RunStatus.CANCELLED
    cancelled = await app.alist_runs(workflow="three_steps", status="cancelled", limit=500)
    assert slow in [r["run_id"] for r in cancelled]
    in_session = await app.asubmit("visit", session_id=sid, idempotency_key="async-key-2")
    assert await app.asubmit("visit", session_id=sid, idempotency_key="async-key-2") == in_session
    with pytest.raises(InvalidRequestError, match="run_id"):
        await app.aget_run(42)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="workflow must be a string"):
        await app.alist_runs(workflow=7)  # type: ignore[arg-type]


def test_register_while_serving_adds_route(app: Nexus) -> None:
    def cube(n: int) -> int:
        return n**3

    app.register("cube", cube)
    with httpx.Client(base_url=app.url, timeout=30) as http:
        r = http.post("/workflows/cube/execute", json={"inputs": {"n": 3}})
        assert r.status_code == 200 and r.json()["outputs"]["cube"]["result"] == 27
        assert "/workflows/cube/execute" in http.get("/openapi.json").json()["paths"]
    assert app.execute("cube", n=2).outputs["cube"]["result"] == 8
    with pytest.raises(ConflictError):
        app.register("cube", cube)


def guarded_workflow() -> WorkflowBuilder:
    """A node that closes over a lock, which Ray cannot pickle to send it to the hosts."""
    lock = threading.Lock()

    def guarded(x: int) -> int:
        with lock:
            return x + 1

    return WorkflowBuilder().add_node(guarded, "g")


NOT_SENT = r"Workflow 'guarded' cannot be sent to its hosts: Ray cannot pickle node 'g' \(cannot pickle '_thread.lock'"


def test_a_workflow_ray_cannot_pickle_is_refused_naming_its_node(
    app: Nexus, http: httpx.Client, tmp_path: Path
) -> None:
    """Before, registering it while serving, or starting an app with it, raised Ray's
    page-long TypeError, and the workflow stayed in the app's catalog."""
    with pytest.raises(WorkflowError, match=NOT_SENT) as refused:
        app.register("guarded", guarded_workflow())
    assert refused.value.details == {"workflow": "guarded", "node": "g"}
    assert "guarded" not in {w["name"] for w in http.get("/workflows").json()}
    with pytest.raises(WorkflowNotFoundError):
        app.execute("guarded", x=1)
    other = Nexus(settings=Settings(home=tmp_path / "home"))
    other.register("guarded", guarded_workflow())
    with pytest.raises(WorkflowError, match=NOT_SENT):
        other.runtime_pool()  # on the running Ray: its hosts are started here
    other.unregister("guarded")
    other.register("plain", WorkflowBuilder().add_node("PythonCodeNode", "p", {"code": "result = 1"}))
    try:
        assert other.execute("plain").outputs["p"]["result"] == 1  # the app starts once the workflow is fixed
    finally:
        other.stop()


def leave(state: dict[str, object]) -> dict[str, object]:
    raise SystemExit(3)


def test_code_that_calls_sys_exit_fails_alone_and_its_host_goes_on(app: Nexus, http: httpx.Client) -> None:
    """Before, SystemExit from a node's code or a session turn stopped its host's loop."""
    app.register("leaves", WorkflowBuilder().add_node("PythonCodeNode", "n", {"code": "raise SystemExit(2)"}))
    try:
        result = http.post("/workflows/leaves/execute", json={"inputs": {}}).json()
        assert result["status"] == "failed" and result["error"]["type"] == "ExitCalledError"
        assert result["error"]["message"] == "node 'n' called sys.exit(2); it fails, and its host goes on"
    finally:
        app.unregister("leaves")
    sid = app.create_session({"n": 1})["session_id"]
    with pytest.raises(ExitCalledError, match=r"called sys.exit\(3\)"):
        app.update_session(sid, leave)
    assert app.update_session(sid, {"n": 2})["version"] == 2
    assert app.execute("double_plus_one", x=1).status == RunStatus.COMPLETED
