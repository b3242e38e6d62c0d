"""Small builders shared by unit tests."""

from __future__ import annotations

import asyncio
from typing import Any

from nexus_ray.testing.sample import double_plus_one
from nexus_ray.workflow import RunOutcome, Workflow, WorkflowEngine

__all__ = ["double_plus_one", "run"]


def run(workflow: Workflow, inputs: dict[str, Any], **kwargs: Any) -> RunOutcome:
    node_inputs = workflow.resolve_inputs(inputs)
    return asyncio.run(WorkflowEngine().execute(workflow, node_inputs, run_id="test", **kwargs))
