"""The same workflows from Python, and registration while serving."""

from __future__ import annotations

import httpx
import pytest

from nexus_ray import ConflictError, InputValidationError, InvalidRequestError, Nexus, RunStatus, WorkflowNotFoundError


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
