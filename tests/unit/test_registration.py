from __future__ import annotations

import pytest

from nexus_ray import (
    ConfigurationError,
    ConflictError,
    InputValidationError,
    Nexus,
    WorkflowError,
    WorkflowNotFoundError,
)

from .helpers import double_plus_one


def test_register_builder_or_workflow_and_names() -> None:
    app = Nexus()
    from nexus_ray.workflow import WorkflowBuilder

    builder = WorkflowBuilder().add_node("PythonCodeNode", "n", {"code": "result = 1"})
    app.register("from-builder.v1", builder, description="d")
    app.register("built_one", double_plus_one())
    assert app.workflows["from-builder.v1"].description == "d"
    with pytest.raises(ConflictError, match="already registered"):
        app.register("built_one", double_plus_one())
    for bad in ("has space", "", "slash/name", "..", "x" * 129):
        with pytest.raises(WorkflowError, match="Invalid workflow name"):
            app.register(bad, double_plus_one())
    with pytest.raises(WorkflowError, match="needs a Workflow or WorkflowBuilder"):
        app.register("nope", 42)  # type: ignore[arg-type]


def test_function_workflow_decorator() -> None:
    app = Nexus()

    @app.workflow
    def area(w: float, h: float = 1.0) -> float:
        """Area of a rectangle."""
        return w * h

    item = app.workflows["area"]
    assert item.description == "Area of a rectangle."
    assert item.input_schema["required"] == ["w"]
    assert area(2, 3) == 6


def test_execute_validates_before_touching_ray() -> None:
    app = Nexus()

    def twice(x: int) -> int:
        return 2 * x

    app.register("twice", twice)
    with pytest.raises(WorkflowNotFoundError):
        app.execute("missing", x=1)
    with pytest.raises(InputValidationError) as err:
        app.execute("twice", {"x": "five"})
    assert err.value.errors[0]["field"] == "x"
    with pytest.raises(InputValidationError) as err:
        app.execute("twice")
    assert err.value.errors[0]["type"] == "missing"


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXUS_PORT", "8123")
    monkeypatch.setenv("NEXUS_MAX_BODY_BYTES", "2048")
    app = Nexus(host="127.0.0.2")
    assert (app.settings.port, app.settings.max_body_bytes, app.settings.host) == (8123, 2048, "127.0.0.2")
    with pytest.raises(ConfigurationError, match="prot: Extra inputs are not permitted"):
        Nexus(prot=1)


@pytest.mark.parametrize("setting", ["run_retention_days", "audit_retention_days"])
def test_retention_is_off_unless_set_and_then_a_positive_number_of_days(
    monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    variable = f"NEXUS_{setting.upper()}"
    assert getattr(Nexus().settings, setting) is None
    monkeypatch.setenv(variable, "30")
    assert getattr(Nexus().settings, setting) == 30
    for bad in ("0", "-1", "inf", "a month"):
        monkeypatch.setenv(variable, bad)
        with pytest.raises(ConfigurationError, match=setting):
            Nexus()
