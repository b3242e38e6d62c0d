"""Small builders shared by unit tests."""

from __future__ import annotations

import asyncio
from typing import Any

from nexus_ray.workflow import RunOutcome, Workflow, WorkflowBuilder, WorkflowEngine


def double_plus_one() -> Workflow:
    b = WorkflowBuilder()
    b.add_node("PythonCodeNode", "double", {"code": "result = {'value': x * 2}"})
    b.add_node("PythonCodeNode", "add_one", {"code": "result = {'value': value + 1}"})
    b.add_connection("double", "result.value", "add_one", "value")
    return b.build()


def run(workflow: Workflow, inputs: dict[str, Any], **kwargs: Any) -> RunOutcome:
    node_inputs = workflow.resolve_inputs(inputs)
    return asyncio.run(WorkflowEngine().execute(workflow, node_inputs, run_id="test", **kwargs))
