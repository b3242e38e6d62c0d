"""Input/output schema derivation and input routing."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel

from nexus_ray import InputValidationError
from nexus_ray.workflow import WorkflowBuilder, free_variables

from .helpers import double_plus_one, run


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("result = {'value': x * 2}", ["x"]),
        ("import math\nresult = math.floor(a) + len(items)", ["a", "items"]),
        ("y = 2\nresult = y * z", ["z"]),
        ("def f(k):\n    return k + offset\nresult = f(n)", ["offset", "n"]),
        ("result = [v * factor for v in values]", ["factor", "values"]),
        ("for i in range(3):\n    total = i\nresult = total + base", ["base"]),
        ("result = print", []),
    ],
)
def test_free_variables_of_code(src: str, expected: list[str]) -> None:
    assert sorted(free_variables(src)) == sorted(expected)


class Address(BaseModel):
    city: str
    zip: str | None = None


def test_typed_node_schema_with_defaults_and_models() -> None:
    def ship(address: Address, express: bool = False, mode: Literal["air", "sea"] = "sea") -> dict[str, str]:
        return {}

    schema = WorkflowBuilder().add_node(ship, "ship").build().input_schema()
    assert schema["required"] == ["address"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["express"]["type"] == "boolean" and props["express"]["default"] is False
    assert props["mode"]["enum"] == ["air", "sea"]
    assert props["address"]["properties"]["city"] == {"title": "City", "type": "string"}
    assert "$ref" not in str(schema)
    assert props["ship"]["type"] == "object"  # node-targeted form


def test_output_schema_from_return_hint() -> None:
    def count(items: list[str]) -> int:
        return len(items)

    out = WorkflowBuilder().add_node(count, "count").build().output_schema()
    assert out["properties"]["count"]["properties"]["result"] == {"type": "integer"}


def test_flat_input_goes_to_every_node_that_needs_it() -> None:
    b = WorkflowBuilder()
    b.add_node("PythonCodeNode", "a", {"code": "result = x + 1"})
    b.add_node("PythonCodeNode", "b", {"code": "result = x * 10"})
    outcome = run(b.build(), {"x": 2})
    assert outcome.outputs == {"a": {"result": 3}, "b": {"result": 20}}


def test_node_targeted_input_wins_over_flat() -> None:
    b = WorkflowBuilder()
    b.add_node("PythonCodeNode", "a", {"code": "result = x + 1"})
    b.add_node("PythonCodeNode", "b", {"code": "result = x * 10"})
    outcome = run(b.build(), {"x": 2, "b": {"x": 5}})
    assert outcome.outputs == {"a": {"result": 3}, "b": {"result": 50}}


def test_invalid_inputs_list_each_field() -> None:
    def f(count: int, ratio: float, name: str) -> str:
        return name

    wf = WorkflowBuilder().add_node(f, "f").build()
    with pytest.raises(InputValidationError) as err:
        wf.resolve_inputs({"count": "many", "ratio": 0.5, "nmae": "x"}, "wf")
    fields = {e["field"]: e for e in err.value.errors}
    assert set(fields) == {"count", "name", "nmae"}
    assert fields["count"]["type"] == "int_parsing"
    assert fields["name"]["type"] == "missing"
    assert "did you mean 'name'" in fields["nmae"]["message"]


def test_inputs_must_be_an_object() -> None:
    with pytest.raises(InputValidationError) as err:
        double_plus_one().resolve_inputs([1, 2])
    assert err.value.errors[0]["field"] == "inputs"


def test_unknown_key_inside_node_target() -> None:
    with pytest.raises(InputValidationError) as err:
        double_plus_one().resolve_inputs({"double": {"x": 1, "z": 2}})
    assert [e["field"] for e in err.value.errors] == ["double.z"]
