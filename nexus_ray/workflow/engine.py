"""Execute a Workflow with asyncio: each node as soon as its inputs are ready.

Independent nodes run concurrently; synchronous node code runs in a thread pool. The
durable runtime observes execution through :class:`EngineHooks`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..exits import exit_error
from ..json_form import stored_form
from .graph import Workflow
from .graph_types import Connection
from .node import Node, NodeContext
from .paths import PathError, get_path
from .progress import CURRENT_NODE, NodeEvents
from .result import NodeRecord, NodeStatus, RunStatus
from .stopping import node_task_name, stop, within


class EngineHooks:
    """Callbacks around node execution. Override what you need; all default to no-ops."""

    async def node_started(self, node_id: str) -> None:
        """A node is about to run."""

    async def node_completed(self, node_id: str, outputs: dict[str, Any], duration_ms: float) -> None:
        """A node finished with ``outputs``."""

    async def node_failed(self, node_id: str, error: dict[str, Any]) -> None:
        """A node raised; ``error`` has node, type and message."""

    async def node_retrying(self, node_id: str, attempt: int, error: dict[str, Any], delay_s: float) -> None:
        """Attempt ``attempt`` failed with ``error``; the next starts after ``delay_s``."""

    async def node_skipped(self, node_id: str, reason: str) -> None:
        """A node will not run (a Switch branch not taken upstream)."""

    def node_event(self, node_id: str, event_type: str, data: dict[str, Any]) -> None:
        """A running node emitted an event (``nexus_ray.progress``/``emit``); called on the
        engine's event loop."""


@dataclass
class RunOutcome:
    """What the engine reports: final status, outputs per completed node, node records."""

    status: RunStatus
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    nodes: dict[str, NodeRecord] = field(default_factory=dict)
    error: dict[str, Any] | None = None


class NodeFailure(Exception):
    """Raised inside the engine to stop a run; carries the error record."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.error = error


def error_record(node_id: str, exc: BaseException) -> dict[str, Any]:
    """``{"node", "type", "message"}`` for an exception raised by a node (notes appended)."""
    notes = getattr(exc, "__notes__", None)
    message = str(exc) + (f" ({'; '.join(notes)})" if notes else "")
    return {"node": node_id, "type": type(exc).__name__, "message": message}


class RemoteNodeRunner(Protocol):
    """Runs a node elsewhere with resources (the runtime provides one over Ray tasks)."""

    async def run_node(
        self, node: Node, inputs: dict[str, Any], ctx: NodeContext, resources: dict[str, Any]
    ) -> dict[str, Any]:
        """Run ``node`` where ``resources`` are available; its outputs."""
        ...


class WorkflowEngine:
    """Runs workflows; one instance serves many concurrent runs.

    Args:
        executor: Thread pool for synchronous node code (None: the loop's default).
        remote: Where nodes that declare resources run (None: such nodes fail, saying so).
    """

    def __init__(self, executor: Executor | None = None, remote: RemoteNodeRunner | None = None) -> None:
        self.executor = executor
        self.remote = remote

    async def execute(
        self,
        workflow: Workflow,
        node_inputs: Mapping[str, dict[str, Any]],
        *,
        run_id: str,
        workflow_name: str = "",
        hooks: EngineHooks | None = None,
        restored: Mapping[str, tuple[NodeRecord, dict[str, Any] | None]] | None = None,
    ) -> RunOutcome:
        """Run ``workflow`` with resolved per-node inputs (see ``Workflow.resolve_inputs``).

        ``restored`` resumes a run: node id → (record, outputs) of nodes that completed or
        were skipped before; they are not run again (no hooks fire for them).
        """
        run = _Run(self, workflow, node_inputs, run_id, workflow_name, hooks or EngineHooks(), restored or {})
        return await run.execute()


class _Run:
    """The state of one execution (not shared between runs)."""

    def __init__(
        self,
        engine: WorkflowEngine,
        workflow: Workflow,
        node_inputs: Mapping[str, dict[str, Any]],
        run_id: str,
        workflow_name: str,
        hooks: EngineHooks,
        restored: Mapping[str, tuple[NodeRecord, dict[str, Any] | None]],
    ) -> None:
        self.engine, self.workflow, self.hooks, self.restored = engine, workflow, hooks, restored
        self.run_id, self.workflow_name = run_id, workflow_name
        self.values: dict[str, dict[str, Any]] = {n: dict(node_inputs.get(n, {})) for n in workflow.nodes}
        self.waiting = {n: len(workflow.incoming[n]) for n in workflow.nodes}
        self.dead = dict.fromkeys(workflow.nodes, 0)
        self.records = {n: NodeRecord() for n in workflow.nodes}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.running: dict[asyncio.Task[dict[str, Any]], str] = {}
        self.node_events: dict[str, NodeEvents] = {}  # each running node's current attempt
        self.ready: deque[str] = deque(n for n in workflow.order if self.waiting[n] == 0)

    async def execute(self) -> RunOutcome:
        try:
            while True:
                await self._start_ready()
                if not self.running:
                    return RunOutcome(RunStatus.COMPLETED, self.outputs, self.records)
                done, _ = await asyncio.wait(self.running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    await self._finish(task, self.running.pop(task))
        except NodeFailure as failure:
            await self._cancel_running()
            return RunOutcome(RunStatus.FAILED, self.outputs, self.records, failure.error)
        except (asyncio.CancelledError, Exception):  # a hook failed (the store), or the run was stopped
            await self._cancel_running()
            raise

    async def _start_ready(self) -> None:
        while self.ready:
            node_id = self.ready.popleft()
            if node_id in self.restored:
                self._restore(node_id, *self.restored[node_id])
                continue
            reason = self._skip_reason(node_id)
            if reason is not None:
                await self._skip(node_id, reason)
                continue
            record = self.records[node_id]
            record.status, record.started_at = NodeStatus.RUNNING, time.time()
            await self.hooks.node_started(node_id)
            task = asyncio.create_task(self._run_node(node_id), name=node_task_name(self.run_id, node_id))
            self.running[task] = node_id

    def _restore(self, node_id: str, record: NodeRecord, outputs: dict[str, Any] | None) -> None:
        self.records[node_id] = record
        if record.status == NodeStatus.COMPLETED and outputs is not None:
            self.outputs[node_id] = outputs
            for conn in self.workflow.outgoing[node_id]:
                self._deliver(conn, outputs)
        else:
            for conn in self.workflow.outgoing[node_id]:
                self._resolve_edge(conn, alive=False)

    def _skip_reason(self, node_id: str) -> str | None:
        incoming = self.workflow.incoming[node_id]
        dead = self.dead[node_id]
        if not incoming or dead == 0:
            return None
        if self.workflow.nodes[node_id].skip_when == "all" and dead < len(incoming):
            return None
        sources = sorted({c.source for c in incoming})
        return f"no input arrived from {', '.join(sources)} (a branch not taken upstream)"

    async def _skip(self, node_id: str, reason: str) -> None:
        self.records[node_id].status, self.records[node_id].reason = NodeStatus.SKIPPED, reason
        await self.hooks.node_skipped(node_id, reason)
        for conn in self.workflow.outgoing[node_id]:
            self._resolve_edge(conn, alive=False)

    async def _run_node(self, node_id: str) -> dict[str, Any]:
        policy = self.workflow.policy(node_id)
        attempt = 1
        while True:
            try:
                return await self._attempt(node_id, attempt, policy.timeout_s)
            except Exception as exc:
                if not policy.should_retry(exc, attempt) or _being_cancelled():
                    if attempt > 1:
                        exc.add_note(f"after {attempt} attempts")
                    raise
                delay = policy.delay_s(attempt)
                await self.hooks.node_retrying(node_id, attempt, error_record(node_id, exc), delay)
                await asyncio.sleep(delay)
                attempt += 1

    async def _attempt(self, node_id: str, attempt: int, timeout_s: float | None) -> dict[str, Any]:
        ctx = NodeContext(self.run_id, node_id, self.workflow_name, self.engine.executor, attempt)
        # This attempt runs in its own task, so the variable is this node's alone.
        events = self.node_events[node_id] = NodeEvents(asyncio.get_running_loop(), self.hooks, node_id)
        CURRENT_NODE.set(events)
        node, resources = self.workflow.nodes[node_id], self.workflow.resources.get(node_id)
        if resources is None:
            work = node.run(self.values[node_id], ctx)
        elif self.engine.remote is None:
            raise RuntimeError(f"node {node_id!r} asks for resources {resources}, but no cluster runtime is attached")
        else:
            work = self.engine.remote.run_node(node, self.values[node_id], ctx, resources)
        work = _exit_is_an_error(work, node_id)  # before a timeout runs it as a task of its own
        try:
            if timeout_s is not None:
                work = within(work, timeout_s, node_id, node_task_name(self.run_id, node_id))
            outputs = await work
        finally:
            events.close()  # its last progress goes out before the node's end
        if not isinstance(outputs, dict):
            raise TypeError(f"node returned {type(outputs).__name__}, expected a dict of outputs")
        return _as_json(outputs)

    async def _finish(self, task: asyncio.Task[dict[str, Any]], node_id: str) -> None:
        record = self.records[node_id]
        record.duration_ms = (time.time() - (record.started_at or time.time())) * 1000
        exc = task.exception()
        if exc is not None:
            await self._fail(node_id, error_record(node_id, exc))
        outputs = task.result()
        record.status = NodeStatus.COMPLETED
        self.outputs[node_id] = outputs
        await self.hooks.node_completed(node_id, outputs, record.duration_ms)
        for conn in self.workflow.outgoing[node_id]:
            self._deliver(conn, outputs)

    async def _fail(self, node_id: str, error: dict[str, Any]) -> None:
        self.records[node_id].status, self.records[node_id].error = NodeStatus.FAILED, error
        await self.hooks.node_failed(node_id, error)
        raise NodeFailure(error)

    def _deliver(self, conn: Connection, outputs: dict[str, Any]) -> None:
        if conn.source_path[0] not in outputs:
            self._resolve_edge(conn, alive=False)
            return
        try:
            value = get_path(outputs, conn.source_path)
        except PathError as exc:
            error = {"node": conn.target, "type": "ConnectionError", "message": f"connection {conn}: {exc}"}
            self.records[conn.target].status, self.records[conn.target].error = NodeStatus.FAILED, error
            raise NodeFailure(error) from None
        self.values[conn.target][conn.target_input] = value
        self._resolve_edge(conn, alive=True)

    def _resolve_edge(self, conn: Connection, *, alive: bool) -> None:
        if not alive:
            self.dead[conn.target] += 1
        self.waiting[conn.target] -= 1
        if self.waiting[conn.target] == 0:
            self.ready.append(conn.target)

    async def _cancel_running(self) -> None:
        for node_id in self.running.values():
            self.records[node_id].status = NodeStatus.CANCELLED
        running, self.running = self.running, {}
        await stop(running)
        for node_id in running.values():  # what a node left behind reports later is dropped
            if node_id in self.node_events:
                self.node_events[node_id].close()


def _being_cancelled() -> bool:
    """Whether this node's task was cancelled (its code caught that and raised something
    else): a stopped run's node is not tried again."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _as_json(outputs: dict[str, Any]) -> dict[str, Any]:
    """The outputs as JSON holds them, and as the store reads them back: a datetime, UUID
    or Decimal becomes its string, a tuple or set a list, a dict's int keys strings (as
    pydantic writes them). Dependent nodes, the caller and a run resumed from its
    checkpoints then all see the same values: before, a resumed run passed the stored
    string where the live run had passed the datetime. Outputs JSON cannot hold fail
    their node here, by name, rather than in a write after it (where a durable run was
    resumed and re-run for ever)."""
    try:
        return stored_form(outputs)
    except (ValueError, RecursionError) as exc:
        raise TypeError(
            f"node returned outputs that cannot be written as JSON ({exc}); return strings, numbers, booleans, "
            "None, lists and dicts (datetimes, UUIDs, dataclasses and pydantic models are converted), "
            "e.g. array.tolist() for a NumPy array"
        ) from None


async def _exit_is_an_error(work: Awaitable[dict[str, Any]], node_id: str) -> dict[str, Any]:
    """``work``, with a ``SystemExit`` it raises as the node's own error (see nexus_ray.exits)."""
    try:
        return await work
    except SystemExit as exc:
        raise exit_error(exc, f"node {node_id!r}") from None
