"""Request and response models of the REST API (their JSON Schemas go into OpenAPI)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ...workflow import NodeStatus, RunStatus


class ExecuteRequest(BaseModel):
    """Body of ``POST /workflows/{name}/execute``."""

    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(default_factory=dict, description="Workflow inputs (see its input schema).")


class RunErrorModel(BaseModel):
    """Why a run failed."""

    node: str = Field(description="The node that failed.")
    type: str = Field(description="Exception type raised by the node.")
    message: str = Field(description="Exception message.")


class NodeRecordModel(BaseModel):
    """What happened to one node."""

    status: NodeStatus
    started_at: float | None = Field(None, description="Unix time the node started.")
    duration_ms: float | None = None
    error: RunErrorModel | None = None
    reason: str | None = Field(None, description="Why the node was skipped.")


class RunResponse(BaseModel):
    """A run's outcome."""

    run_id: str
    workflow: str
    status: RunStatus
    outputs: dict[str, Any] = Field(description="Node id → outputs of that node.")
    duration_ms: float
    error: RunErrorModel | None = Field(None, description="Present when status is 'failed'.")
    nodes: dict[str, NodeRecordModel] = Field(default_factory=dict)


class WorkflowSummary(BaseModel):
    """A registered workflow and its schemas."""

    name: str
    description: str
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]


class Health(BaseModel):
    """Liveness."""

    status: str = "ok"
