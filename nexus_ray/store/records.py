"""What the store returns: plain dataclasses, JSON already decoded."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..workflow import NodeRecord, NodeStatus, RunResult, RunStatus

TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED})


@dataclass
class NodeCheckpoint:
    """A node's committed state within a run."""

    node_id: str
    status: NodeStatus
    outputs: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    reason: str | None = None
    started_at: float | None = None
    duration_ms: float | None = None

    def record(self) -> NodeRecord:
        """As the engine's NodeRecord."""
        return NodeRecord(self.status, self.started_at, self.duration_ms, self.error, self.reason)


@dataclass
class RunRecord:
    """A run as stored: inputs, status, ownership, and its node checkpoints."""

    run_id: str
    workflow: str
    status: RunStatus
    inputs: dict[str, dict[str, Any]]
    created_at: float
    updated_at: float
    outputs: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    owner: str | None = None
    lease_expires: float | None = None
    finished_at: float | None = None
    session_id: str | None = None
    nodes: dict[str, NodeCheckpoint] = field(default_factory=dict)
    session_version: int | None = None  # of the session state the run read, when in a session
    definition: dict[str, str] | None = None  # node id → definition digest when it started
    crashes: dict[str, int] = field(default_factory=dict)  # node id → resumes while it was running

    @property
    def done(self) -> bool:
        """True once the run reached a terminal status."""
        return self.status in TERMINAL

    def running_nodes(self) -> list[str]:
        """The nodes whose last recorded state is running (in flight, or in flight when
        their host died)."""
        return [n for n, c in self.nodes.items() if c.status == NodeStatus.RUNNING]

    def result(self) -> RunResult:
        """As a RunResult (outputs of completed nodes, node records)."""
        outputs = (
            self.outputs
            if self.outputs is not None
            else {
                n: c.outputs
                for n, c in self.nodes.items()
                if c.status == NodeStatus.COMPLETED and c.outputs is not None
            }
        )
        end = self.finished_at if self.finished_at is not None else self.updated_at
        return RunResult(
            run_id=self.run_id,
            workflow=self.workflow,
            status=self.status,
            outputs=outputs,
            duration_ms=round((end - self.created_at) * 1000, 3),
            error=self.error,
            nodes={n: c.record() for n, c in self.nodes.items()},
        )


@dataclass
class SessionRecord:
    """A session as stored. ``expires_at`` slides: each change moves it to now + ttl_s."""

    session_id: str
    state: dict[str, Any]
    version: int
    created_at: float
    updated_at: float
    expires_at: float | None = None
    ttl_s: float | None = None

    def expired(self, now: float) -> bool:
        """True once past its expiry."""
        return self.expires_at is not None and self.expires_at <= now

    def to_dict(self) -> dict[str, Any]:
        """The REST/Python representation."""
        return {
            "session_id": self.session_id,
            "state": self.state,
            "version": self.version,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "expires_at": self.expires_at,
            "ttl_s": self.ttl_s,
        }
