from __future__ import annotations

import pickle

import pytest

from nexus_ray import errors
from nexus_ray.errors import (
    ConflictError,
    InputValidationError,
    NexusError,
    PayloadTooLargeError,
    RuntimeUnavailableError,
    WorkflowNotFoundError,
)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (WorkflowNotFoundError("x"), 404, 4),
        (InputValidationError([{"field": "x", "message": "m", "type": "t"}]), 422, 3),
        (PayloadTooLargeError("big"), 413, 3),
        (ConflictError("dup"), 409, 6),
        (RuntimeUnavailableError("down"), 503, 5),
        (ValueError("other"), 500, 1),
    ],
)
def test_one_mapping_for_every_channel(error: Exception, status: int, code: int) -> None:
    assert errors.http_status(error) == status
    assert errors.exit_code(error) == code
    assert isinstance(errors.mcp_code(error), int)


def test_problem_document_carries_details() -> None:
    err = WorkflowNotFoundError("No workflow named 'x'.", workflow="x")
    problem = err.to_problem("/workflows/x/execute")
    assert problem == {
        "type": "https://nexus-ray.dev/problems/workflow-not-found",
        "title": "Workflow not found",
        "status": 404,
        "detail": "No workflow named 'x'.",
        "instance": "/workflows/x/execute",
        "workflow": "x",
    }


def test_errors_survive_pickling_with_details() -> None:
    err = InputValidationError([{"field": "x", "message": "Field required", "type": "missing"}], workflow="w")
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is InputValidationError and isinstance(copy, NexusError)
    assert copy.errors == err.errors and copy.message == err.message
