"""Request and response models of the REST API (their JSON Schemas go into OpenAPI)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ...workflow import NodeStatus, RunStatus


class ExecuteRequest(BaseModel):
    """Body of ``POST /workflows/{name}/execute``."""

    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(default_factory=dict, description="Workflow inputs (see its input schema).")
    session_id: str | None = Field(
        None,
        description="Run in this session: its state is offered as inputs (explicit inputs win) and "
        "SessionUpdateNode patches are applied when the run completes.",
    )
    mode: Literal["sync", "async", "stream"] = Field(
        "sync",
        description="'sync': wait and return the outcome (200); 'async': return 202 with the run id at once; "
        "'stream': the run's events as SSE (also chosen by `Accept: text/event-stream`).",
    )


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


class GraphNode(BaseModel):
    """A node of a workflow's graph."""

    id: str
    type: str
    inputs: list[str]
    outputs: list[str]


class GraphEdge(BaseModel):
    """An edge: ``from``'s ``output`` feeds ``to``'s ``input``."""

    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    output: str
    to: str
    input: str


class WorkflowGraph(BaseModel):
    """Nodes and edges."""

    nodes: list[GraphNode]
    edges: list[GraphEdge]


class WorkflowDetail(WorkflowSummary):
    """A workflow, its schemas and its node graph."""

    graph: WorkflowGraph


class Health(BaseModel):
    """Liveness."""

    status: str = "ok"
    catalog: str = Field(description="Digest of the served workflow names (changes when they do).")


class RunAccepted(BaseModel):
    """A run started in async mode; poll ``GET /runs/{run_id}``."""

    run_id: str
    status: RunStatus


class RunSummary(BaseModel):
    """A run in a listing (no outputs; ``GET /runs/{run_id}`` has them)."""

    run_id: str
    workflow: str
    status: RunStatus
    session_id: str | None = None
    created_at: float
    finished_at: float | None = None
    duration_ms: float
    error: RunErrorModel | None = None


class RunPage(BaseModel):
    """One page of runs, newest first."""

    runs: list[RunSummary]
    next_cursor: str | None = Field(None, description="Pass as ?cursor= for the next page; null on the last.")


class Readiness(BaseModel):
    """``GET /ready``: every dependency "ok" (else 503 naming what is down)."""

    status: Literal["ready"] = "ready"
    checks: dict[str, str] = Field(description="ray, serve, store, run_hosts, session_hosts: 'ok' or the problem.")
    ingress_replicas: int | None = Field(
        default=None, description="Ingress replicas running now (Serve may autoscale them); null: unknown."
    )
    host_pools: dict[str, int] = Field(
        default_factory=dict,
        description="Hosts in the 'run' and 'session' pools now (the PoolManager may resize them).",
    )
