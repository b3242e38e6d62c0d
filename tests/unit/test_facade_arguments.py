"""The Python API refuses a bad argument by name, as REST does, before reaching Ray."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from ray.exceptions import RayActorError, RayTaskError

from nexus_ray import (
    InputValidationError,
    InvalidRequestError,
    Nexus,
    NotFoundError,
    RuntimeUnavailableError,
    WorkflowBuilder,
)
from nexus_ray.runtime.errors import translate_ray_error
from nexus_ray.testing.sample import double_plus_one


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Nexus:
    app = Nexus()
    app.register("double_plus_one", double_plus_one())

    def no_runtime() -> None:
        raise AssertionError("a bad argument must be refused before the runtime is reached")

    monkeypatch.setattr(app, "_ensure_runtime", no_runtime)
    return app


def call_api(app: Nexus, method: str, *args: Any, **kwargs: Any) -> Any:
    """``app.method(...)``, run to completion when it is one of the async ones."""
    result = getattr(app, method)(*args, **kwargs)
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


@pytest.mark.parametrize("key", ["", "k" * 256, "ключ", "tab\there", 5])
@pytest.mark.parametrize("call", ["execute", "submit", "aexecute", "asubmit"])
def test_an_idempotency_key_follows_the_rule_of_the_rest_header(app: Nexus, call: str, key: Any) -> None:
    with pytest.raises(InvalidRequestError, match="idempotency_key must be 1-255 printable ASCII") as info:
        call_api(app, call, "double_plus_one", {"x": 1}, idempotency_key=key)
    assert info.value.details["field"] == "idempotency_key"


@pytest.mark.parametrize("session_id", ["", 123])
@pytest.mark.parametrize("call", ["execute", "aexecute", "asubmit"])
def test_a_session_id_is_a_non_empty_string(app: Nexus, call: str, session_id: Any) -> None:
    with pytest.raises(InvalidRequestError, match="session_id must be a session's id"):
        call_api(app, call, "double_plus_one", {"x": 1}, session_id=session_id)


@pytest.mark.parametrize("run_id", ["", 42, None])
@pytest.mark.parametrize("call", ["get_run", "cancel", "aget_run", "acancel"])
def test_a_run_id_is_a_non_empty_string(app: Nexus, call: str, run_id: Any) -> None:
    with pytest.raises(InvalidRequestError, match="run_id must be a run's id") as info:
        call_api(app, call, run_id)
    assert info.value.details["field"] == "run_id"


@pytest.mark.parametrize(
    ("filters", "problem"),
    [
        ({"workflow": 7}, "workflow must be a string"),
        ({"session_id": ["s"]}, "session_id must be a string"),
        ({"status": "done"}, "status"),
        ({"limit": 0}, "limit"),
        ({"cursor": "not an id"}, "cursor"),
    ],
)
@pytest.mark.parametrize("call", ["list_runs", "alist_runs"])
def test_run_listing_filters_are_checked(app: Nexus, call: str, filters: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidRequestError, match=problem):
        call_api(app, call, **filters)


@pytest.mark.parametrize("inputs", [[1], "x=1", 5])
def test_inputs_that_are_not_a_dict_are_an_input_error_not_a_type_error(app: Nexus, inputs: Any) -> None:
    with pytest.raises(InputValidationError) as info:
        app.submit("double_plus_one", inputs)
    assert info.value.errors[0]["field"] == "inputs" and info.value.details["workflow"] == "double_plus_one"


def test_an_event_type_filter_is_a_name(app: Nexus) -> None:
    with pytest.raises(InvalidRequestError, match="event_type must be an event type name"):
        app.get_events(event_type=5)  # type: ignore[arg-type]


def test_what_an_actor_raised_is_raised_unwrapped() -> None:
    """Ray wraps an actor's exception in a class that is both RayTaskError and the cause's
    class; the caller gets the cause itself (raised from Ray's error, which keeps the
    actor's traceback)."""
    for cause in (NotFoundError("No session with id 'x'."), ZeroDivisionError("division by zero")):
        wrapped = RayTaskError("SessionHost.turn", "Traceback ...", cause).as_instanceof_cause()
        assert isinstance(wrapped, type(cause)) and isinstance(wrapped, RayTaskError)
        unwrapped = translate_ray_error(wrapped)
        assert unwrapped is cause and not isinstance(unwrapped, RayTaskError)
    assert isinstance(translate_ray_error(RayActorError()), RuntimeUnavailableError)


def test_a_store_that_cannot_open_is_one_clear_error_before_ray_starts(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nexus_ray import Settings
    from nexus_ray.runtime.ray_cluster import RayRuntime

    def no_ray(self: RayRuntime) -> None:
        raise AssertionError("Ray must not start when the store cannot open")

    monkeypatch.setattr(RayRuntime, "start", no_ray)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    app = Nexus(settings=Settings(home=blocker / "home", port=0))
    with pytest.raises(RuntimeUnavailableError) as info:
        app.start()
    assert f"Cannot open the SQLite store at {blocker}/home/nexus.db" in info.value.message
    assert "NEXUS_HOME" in info.value.message and info.value.details["store"] == f"{blocker}/home/nexus.db"


def kinds(value: dict[str, Any]) -> dict[str, str]:
    return {k: type(v).__name__ for k, v in value.items()}


def test_a_durable_app_sends_a_run_the_inputs_as_the_store_keeps_them() -> None:
    """Inputs from Python may hold a datetime or a tuple: the store keeps their JSON form,
    and a resumed run reads that back, so the run is sent that form from the start. The
    other channels parse JSON, so the runtime does not convert what they send."""
    import datetime

    value = {"when": datetime.datetime(2026, 1, 2), "pair": (1, 2)}
    durable, memory = Nexus(durable=True), Nexus(durable=False)
    for app in (durable, memory):
        app.register("kinds", WorkflowBuilder().add_node(kinds, "kinds"))
    stored = {"when": "2026-01-02T00:00:00", "pair": [1, 2]}
    assert durable._checked_run("kinds", {"value": value}, None, None) == ("kinds", {"kinds": {"value": stored}})
    assert durable._checked_run("kinds", {"value": value}, None, "s-1") == ("kinds", {"value": stored})
    assert memory._checked_run("kinds", {"value": value}, None, None) == ("kinds", {"kinds": {"value": value}})
    with pytest.raises(InvalidRequestError, match="The run's inputs cannot be stored as JSON"):
        durable._checked_run("kinds", {"value": {"thing": object()}}, None, None)
