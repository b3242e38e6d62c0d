"""Small builders shared by unit tests."""

from __future__ import annotations

import asyncio
from typing import Any

from nexus_ray.store.backends import CommitUnknownError
from nexus_ray.testing.sample import double_plus_one
from nexus_ray.workflow import RunOutcome, Workflow, WorkflowBuilder, WorkflowEngine

__all__ = [
    "CALLS",
    "TWO_NODE_EVENTS",
    "InProcessSessions",
    "double_plus_one",
    "lose_the_next_commit_reply",
    "run",
    "two_steps",
    "visit_workflow",
]

# The events of a 2-node run, in order.
TWO_NODE_EVENTS = ["run.started", "node.started", "node.completed", "node.started", "node.completed", "run.completed"]
CALLS: list[str] = []  # the nodes of two_steps() that ran, in order


def step_one(x: int) -> int:
    CALLS.append("one")
    return x + 1


def step_two(y: int) -> int:
    CALLS.append("two")
    return y * 10


def two_steps() -> Workflow:
    """one (x + 1) then two (y * 10), each recording in CALLS that it ran."""
    b = WorkflowBuilder().add_node(step_one, "one").add_node(step_two, "two")
    return b.add_connection("one", "result", "two", "y").build()


def visit_workflow() -> Workflow:
    """Counts a session's visits and greets its user, writing both back to the session."""
    b = WorkflowBuilder()
    b.add_node("PythonCodeNode", "count", {"code": "result = {'visits': visits + 1, 'greeting': 'hi ' + name}"})
    b.add_node("SessionUpdateNode", "remember")
    b.add_connection("count", "result", "remember", "patch")
    return b.build()


class InProcessSessions:
    """The SessionCaller a RunService uses, over a SessionService in this process."""

    def __init__(self, service: Any) -> None:
        self.service = service

    async def call(self, method: str, session_id: str, *args: Any) -> Any:
        return await getattr(self.service, method)(*args)


def run(workflow: Workflow, inputs: dict[str, Any], **kwargs: Any) -> RunOutcome:
    node_inputs = workflow.resolve_inputs(inputs)
    return asyncio.run(WorkflowEngine().execute(workflow, node_inputs, run_id="test", **kwargs))


def lose_the_next_commit_reply(backend: Any) -> None:
    """Make ``backend``'s next commit, then report it lost (CommitUnknownError), as when a
    PostgreSQL connection drops after COMMIT reached the server."""
    commit = backend.commit

    def commit_then_lose_the_reply() -> None:
        backend.commit = commit
        commit()
        raise CommitUnknownError("the connection was lost while committing: server closed the connection")

    backend.commit = commit_then_lose_the_reply
