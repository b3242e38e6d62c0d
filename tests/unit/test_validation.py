"""Every definition error is a WorkflowError that names the nodes or edge involved."""

from __future__ import annotations

import pytest

from nexus_ray import WorkflowError
from nexus_ray.workflow import WorkflowBuilder


def code(src: str) -> dict[str, str]:
    return {"code": src}


def test_unknown_node_type_suggests_close_matches() -> None:
    with pytest.raises(WorkflowError) as err:
        WorkflowBuilder().add_node("PythonCodeNod", "n", code("result = 1"))
    assert "PythonCodeNod" in err.value.message
    assert "PythonCodeNode" in err.value.details["close_matches"]


def test_duplicate_node_id() -> None:
    b = WorkflowBuilder().add_node("PythonCodeNode", "n", code("result = 1"))
    with pytest.raises(WorkflowError, match="Duplicate node id 'n'"):
        b.add_node("PythonCodeNode", "n", code("result = 2"))


@pytest.mark.parametrize(
    ("src", "dst", "missing", "end"),
    [("ghost", "b", "ghost", "from"), ("a", "ghost", "ghost", "to")],
)
def test_connection_to_or_from_missing_node(src: str, dst: str, missing: str, end: str) -> None:
    b = WorkflowBuilder()
    b.add_node("PythonCodeNode", "a", code("result = 1"))
    b.add_node("PythonCodeNode", "b", code("result = v"))
    b.add_connection(src, "result", dst, "v")
    with pytest.raises(WorkflowError) as err:
        b.build()
    assert f"the {end} node {missing!r} does not exist" in err.value.message
    assert err.value.details["node"] == missing


def test_connection_to_unknown_input_names_node_and_input() -> None:
    b = WorkflowBuilder()
    b.add_node("PythonCodeNode", "a", code("result = 1"))
    b.add_node("PythonCodeNode", "b", code("result = value"))
    b.add_connection("a", "result", "b", "valeu")
    with pytest.raises(WorkflowError) as err:
        b.build()
    assert "no input 'valeu'" in err.value.message and "did you mean 'value'" in err.value.message
    assert err.value.details == {"connection": "a.result -> b.valeu", "node": "b", "input": "valeu"}


def test_connection_from_unknown_output() -> None:
    b = WorkflowBuilder()
    b.add_node("SwitchNode", "s", {"value": 1})
    b.add_node("PythonCodeNode", "b", code("result = v"))
    b.add_connection("s", "yes_output", "b", "v")
    with pytest.raises(WorkflowError, match="has no output 'yes_output'.*true_output"):
        b.build()


def test_input_connected_twice() -> None:
    b = WorkflowBuilder()
    b.add_node("PythonCodeNode", "a", code("result = 1"))
    b.add_node("PythonCodeNode", "c", code("result = 2"))
    b.add_node("PythonCodeNode", "b", code("result = v"))
    b.add_connection("a", "result", "b", "v").add_connection("c", "result", "b", "v")
    with pytest.raises(WorkflowError, match="connected twice"):
        b.build()


def test_cycle_names_the_nodes_on_it() -> None:
    b = WorkflowBuilder()
    b.add_node("PythonCodeNode", "start", code("result = 0"))
    for name in ("a", "b", "c"):
        b.add_node("PythonCodeNode", name, code("result = v + w"))
    b.add_connection("start", "result", "a", "w")
    b.add_connection("a", "result", "b", "v").add_connection("b", "result", "c", "v")
    b.add_connection("c", "result", "a", "v")
    b.add_connection("start", "result", "b", "w").add_connection("start", "result", "c", "w")
    with pytest.raises(WorkflowError) as err:
        b.build()
    assert err.value.details["cycle"] == ["a", "b", "c", "a"]
    assert "a -> b -> c -> a" in err.value.message


def test_required_input_not_obtainable_as_workflow_input() -> None:
    b = WorkflowBuilder()
    b.add_node("PythonCodeNode", "price", code("result = 1"))
    b.add_node("PythonCodeNode", "total", code("result = price * 2"))
    with pytest.raises(WorkflowError) as err:
        b.build()
    assert err.value.details == {"node": "total", "input": "price"}
    assert "a node is also named 'price'" in err.value.message


def test_unknown_parameter_for_node() -> None:
    with pytest.raises(WorkflowError, match="no parameter 'colour'"):
        WorkflowBuilder().add_node("HTTPRequestNode", "h", {"colour": "red"})


def test_syntax_error_in_code_names_node_and_line() -> None:
    with pytest.raises(WorkflowError) as err:
        WorkflowBuilder().add_node("PythonCodeNode", "bad", code("x = 1\nresult = ("))
    assert err.value.details == {"node": "bad", "line": 2}


def test_code_required() -> None:
    with pytest.raises(WorkflowError, match="needs a non-empty 'code'"):
        WorkflowBuilder().add_node("PythonCodeNode", "n", {})


def test_empty_workflow() -> None:
    with pytest.raises(WorkflowError, match="at least one node"):
        WorkflowBuilder().build()


def test_function_with_var_kwargs_is_refused() -> None:
    def loose(**kw: int) -> int:
        return 0

    with pytest.raises(WorkflowError, match="takes \\*kw"):
        WorkflowBuilder().add_node(loose, "l")


def test_switch_and_merge_config_errors() -> None:
    with pytest.raises(WorkflowError, match="unknown operator '=~'"):
        WorkflowBuilder().add_node("SwitchNode", "s", {"operator": "=~"})
    with pytest.raises(WorkflowError, match="unknown merge_type 'zip'"):
        WorkflowBuilder().add_node("MergeNode", "m", {"merge_type": "zip"})
