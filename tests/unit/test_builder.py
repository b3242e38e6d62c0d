from __future__ import annotations

import pytest
from pydantic import BaseModel

from nexus_ray.workflow import Node, PythonCodeNode, Workflow, WorkflowBuilder, node

from .helpers import double_plus_one, run


def test_double_plus_one_kailash_shape() -> None:
    outcome = run(double_plus_one(), {"x": 5})
    assert outcome.status == "completed"
    assert outcome.outputs["add_one"]["result"]["value"] == 11
    assert outcome.outputs["double"] == {"result": {"value": 10}}


def test_built_workflow_is_immutable() -> None:
    wf = double_plus_one()
    assert isinstance(wf, Workflow)
    with pytest.raises(TypeError):
        wf.nodes["extra"] = wf.nodes["double"]  # type: ignore[index]
    assert isinstance(wf.connections, tuple)
    assert wf.order == ("double", "add_one")


def test_add_node_with_class_and_keyword_params() -> None:
    b = WorkflowBuilder()
    b.add_node(PythonCodeNode, "n", code="result = a + b")
    wf = b.build()
    assert run(wf, {"a": 1, "b": 2}).outputs["n"] == {"result": 3}


def test_add_node_with_plain_typed_function() -> None:
    def add(a: int, b: int = 10) -> int:
        return a + b

    wf = WorkflowBuilder().add_node(add, "add").build()
    assert run(wf, {"a": "5"}).outputs["add"] == {"result": 15}  # "5" coerced to int


def test_node_decorator_registers_type_and_keeps_function_callable() -> None:
    @node
    def triple_it(x: int) -> int:
        return 3 * x

    assert triple_it(2) == 6
    wf = WorkflowBuilder().add_node("triple_it", "t").build()
    assert run(wf, {"x": 4}).outputs["t"] == {"result": 12}


def test_async_typed_node_and_pydantic_output() -> None:
    class Point(BaseModel):
        x: int
        y: int

    async def make_point(x: int, y: int) -> Point:
        return Point(x=x, y=y)

    wf = WorkflowBuilder().add_node(make_point, "p").build()
    assert run(wf, {"x": 1, "y": 2}).outputs["p"] == {"result": {"x": 1, "y": 2}}


def test_connect_with_mapping() -> None:
    b = WorkflowBuilder()
    b.add_node("PythonCodeNode", "a", {"code": "result = {'v': 1, 'w': 2}"})
    b.add_node("PythonCodeNode", "b", {"code": "result = p + q"})
    b.connect("a", "b", mapping={"result.v": "p", "result.w": "q"})
    assert run(b.build(), {}).outputs["b"] == {"result": 3}


def test_python_code_node_function_name_and_from_function() -> None:
    b = WorkflowBuilder()
    b.add_node("PythonCodeNode", "f", {"code": "def go(n: int, k: int = 2):\n    return n ** k", "function_name": "go"})

    def shout(text: str) -> str:
        return text.upper()

    b.add_node(PythonCodeNode.from_function(shout), "s")
    wf = b.build()
    assert set(wf.input_schema()["required"]) == {"n", "text"}
    outcome = run(wf, {"n": 3, "text": "hi"})
    assert outcome.outputs["f"] == {"result": 9}
    assert outcome.outputs["s"] == {"result": "HI"}


def test_imports_allowed_in_code() -> None:
    wf = WorkflowBuilder().add_node("PythonCodeNode", "m", {"code": "import math\nresult = math.sqrt(v)"}).build()
    assert run(wf, {"v": 16}).outputs["m"] == {"result": 4.0}


def test_static_param_becomes_default_input() -> None:
    wf = WorkflowBuilder().add_node("PythonCodeNode", "n", {"code": "result = x + y", "y": 100}).build()
    schema = wf.input_schema()
    assert schema["required"] == ["x"]
    assert schema["properties"]["y"]["default"] == 100
    assert run(wf, {"x": 1}).outputs["n"] == {"result": 101}
    assert run(wf, {"x": 1, "y": 2}).outputs["n"] == {"result": 3}


def test_custom_node_subclass() -> None:
    from nexus_ray.workflow import InputField, NodeContext

    class Upper(Node):
        def declare_inputs(self) -> dict[str, InputField]:
            return {"text": InputField("text", str)}

        def output_ports(self) -> frozenset[str]:
            return frozenset({"text"})

        async def run(self, inputs: dict, ctx: NodeContext) -> dict:
            return {"text": inputs["text"].upper()}

    wf = WorkflowBuilder().add_node(Upper, "u").build()
    assert run(wf, {"text": "abc"}).outputs["u"] == {"text": "ABC"}
