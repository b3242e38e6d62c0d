"""The sample workflow that tests and benchmarks share."""

from __future__ import annotations

from ..workflow import Workflow, WorkflowBuilder


def double_plus_one() -> Workflow:
    """Two ``PythonCodeNode``s: ``double`` (``x * 2``) feeding ``add_one`` (``+ 1``), so
    ``{"x": 5}`` gives ``{"add_one": {"result": {"value": 11}}}``."""
    builder = WorkflowBuilder()
    builder.add_node("PythonCodeNode", "double", {"code": "result = {'value': x * 2}"})
    builder.add_node("PythonCodeNode", "add_one", {"code": "result = {'value': value + 1}"})
    builder.add_connection("double", "result.value", "add_one", "value")
    return builder.build()
