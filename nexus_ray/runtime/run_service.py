"""The logic of a RunHost, free of Ray so it can be tested in-process.

Runs are virtual actors: addressed by id, executed here, their truth in the store. With a
store, each run is created with its inputs before any node starts, every node state is
checkpointed, and the host holds a renewable lease on the runs it executes. A host adopts
the runs whose owner's lease expired (the owner died) and resumes them from their last
committed node.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..errors import (
    ConflictError,
    NexusError,
    NotFoundError,
    RateLimitedError,
    StoreUnavailableError,
    WorkflowNotFoundError,
)
from ..security.tenancy import tag_of
from ..store import AsyncStore, RunRecord, Store
from ..workflow import NodeRecord, NodeStatus, RunResult, RunStatus, Workflow, WorkflowEngine
from ..workflow.engine import RemoteNodeRunner, RunOutcome
from ..workflow.events import RUN_TERMINAL, node_event, run_end_event, run_started
from ..workflow.nodes import session_patches
from .checkpoints import RunEvents, RunHooks
from .event_feed import EventFeed
from .host_metrics import RunHostMetrics, check_store
from .loop_watch import LoopWatch
from .node_threads import NodeThreads
from .peers import PeerGoneError, Peers
from .retry_window import RETRY_WINDOW_S, RetryWindow
from .rounds import repeat

logger = logging.getLogger("nexus_ray.runtime")


class SessionCaller(Protocol):
    """Calls a method on the SessionHost that owns a session (SessionsClient)."""

    async def call(self, method: str, session_id: str, *args: Any) -> Any: ...


# A finished run's result stays in memory this long: without a store it is the only copy;
# with one, only callers still waiting on the run need it (the store has it), and keeping
# every result for minutes cost long GC pauses (p99 > 300 ms at 1,000 runs/s).
RESULT_TTL_S = 300.0
DURABLE_RESULT_TTL_S = 10.0
PURGE_EVERY_S = 60.0  # how often a host deletes the runs past the retention
PURGE_CHUNK = 200  # runs per purge transaction (~2 ms of SQLite here)
SESSION_LOG_CHUNKS = 50  # transactions of PURGE_CHUNK session logs a purge round walks at most
STORE_RECOVERY_S = 30.0  # how long a run whose store write failed waits for the store to answer
STORE_RECOVERIES = 5  # store failures a run goes on after, on this host
STOP_ELSEWHERE_S = 5.0  # how long a cancel waits for the host running the run to stop it
PEER_GRACE_S = 5.0  # beyond a long poll's timeout, for the answer of the host that runs it


class RunService:
    """Hosts many concurrent runs.

    Args:
        host_id: Name of the host (its place on the hash ring).
        workflows: Registered name → workflow.
        node_threads: Threads for synchronous node code.
        store_factory: Opens the store (on the store thread); None: runs are not durable.
        lease_s: How long a lease on a run lasts without renewal.
        remote: Runs nodes that declare resources (the RunHost passes Ray tasks).
        sessions: Reaches the SessionHosts (for runs that belong to a session).
        max_runs_per_tenant: Runs a tenant may have pending or running (429 above).
        lookup: Finds a workflow registered after this host loaded its set (the catalog).
        retention_s: Finished runs older than this are deleted from the store (None: kept).
        crash_retries: How many times a node that was running when its host died runs
            again; at the next such death its run fails (a node that kills its host, by
            ``os._exit``, a crash in native code or running out of memory, takes down no more).
        peers: Reaches the other hosts (see peers.py), for runs that run off their id's
            host: a cancel stops such a run there at once (without it, at that host's next
            lease renewal, up to a third of ``lease_s`` later), and its events are followed
            there live (without it, read from the store every 0.2 s).
    """

    def __init__(
        self,
        host_id: str,
        workflows: dict[str, Workflow],
        node_threads: int = 64,
        store_factory: Callable[[], Store] | None = None,
        lease_s: float = 10.0,
        remote: RemoteNodeRunner | None = None,
        sessions: SessionCaller | None = None,
        max_runs_per_tenant: int | None = None,
        lookup: Callable[[str], Awaitable[Workflow | None]] | None = None,
        retention_s: float | None = None,
        crash_retries: int = 3,
        peers: Peers | None = None,
    ) -> None:
        self.host_id = host_id
        self.peers = peers
        self.retention_s = retention_s
        self.crash_retries = crash_retries
        self._purging: asyncio.Task[None] | None = None
        self._session_logs_after = ""  # where the walk over session logs goes on
        self.lookup = lookup
        self.max_runs_per_tenant = max_runs_per_tenant
        self.owner = f"{host_id}/{os.getpid()}/{secrets.token_hex(3)}"  # one per incarnation
        self.workflows = dict(workflows)
        self.executor = NodeThreads(node_threads, name=f"{host_id}-node")
        self.engine = WorkflowEngine(self.executor, remote)
        self.feed = EventFeed("run_id", lambda event: event["type"] in RUN_TERMINAL)
        self._result_ttl_s = RESULT_TTL_S if store_factory is None else DURABLE_RESULT_TTL_S
        self.metrics = RunHostMetrics(host_id)
        self.store = AsyncStore(store_factory, self.feed.publish) if store_factory is not None else None
        self.lease_s = lease_s
        self.sessions = sessions
        self._tasks: dict[str, asyncio.Task[dict[str, Any]]] = {}
        self._cancelled: set[str] = set()  # cancelled by a user (not by losing the lease)
        self._keys: dict[str, tuple[str, str]] = {}  # idempotency keys without a store
        self._key_of_run: dict[str, str] = {}
        self._maintenance: asyncio.Task[None] | None = None
        self._watch: LoopWatch | None = None
        self.retries = RetryWindow()

    def expect_retries(self, window_s: float = RETRY_WINDOW_S) -> None:
        """This host was restarted after its process died, and Ray sends the calls that were
        in flight again: for ``window_s``, a cancel of a run that is cancelled already is
        taken for such a call (which did cancel it) and answered with the run."""
        self.retries.open_for(window_s)

    # -- registry -----------------------------------------------------------------------
    def register(self, name: str, workflow: Workflow) -> None:
        """Add or replace a workflow."""
        self.workflows[name] = workflow

    def unregister(self, name: str) -> None:
        """Stop accepting runs of ``name`` (runs already going finish)."""
        self.workflows.pop(name, None)

    # -- runs ---------------------------------------------------------------------------
    async def execute(self, name: str, node_inputs: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any]:
        """Run ``name`` as ``run_id`` and return its RunResult dict. Idempotent per run id:
        a retried call (e.g. after this host restarted) waits for the same run."""
        if run_id in self._tasks:
            return await self._outcome(run_id, self._tasks[run_id])
        if not await self._create(name, node_inputs, run_id):
            return await self.wait_for(run_id)
        return await self._outcome(run_id, self._start(_RunPlan(run_id, name, node_inputs)))

    async def execute_in_session(
        self, name: str, inputs: dict[str, Any], run_id: str, session_id: str, wait: bool
    ) -> dict[str, Any]:
        """Run in a session: its state is offered as inputs (explicit inputs win), and the
        patches of the run's SessionUpdateNodes are applied when it completes."""
        workflow = await self._workflow(name)
        state, version = await self._session_state(session_id)
        offered = {k: v for k, v in state.items() if k in workflow.inputs.by_name}
        node_inputs = workflow.resolve_inputs({**offered, **inputs}, name)
        if not await self._create(name, node_inputs, run_id, session_id, version):
            return await (self.wait_for(run_id) if wait else self._status(run_id))
        task = self._start(_RunPlan(run_id, name, node_inputs, session_id=session_id, session_version=version))
        if wait:
            return await self._outcome(run_id, task)
        return {"run_id": run_id, "status": RunStatus.RUNNING.value}

    async def _session_state(self, session_id: str) -> tuple[dict[str, Any], int]:
        """The session's state and its version (what the run reads)."""
        if self.store is not None:  # the store has every committed turn: no hop needed
            record = await self.store.call("get_session", session_id)
            if record is None:
                raise NotFoundError(f"No session with id {session_id!r} (it may have expired).", session_id=session_id)
            return record.state, record.version
        session = await self._sessions().call("get", session_id, session_id)
        return session["state"], session["version"]

    def _sessions(self) -> SessionCaller:
        if self.sessions is None:
            raise ConflictError("This host has no session pool; runs in sessions need the Nexus runtime.")
        return self.sessions

    async def execute_idempotent(
        self, key: str, digest: str, name: str, node_inputs: dict[str, dict[str, Any]], run_id: str, wait: bool
    ) -> dict[str, Any]:
        """Execute (``wait``) or start a run under an idempotency key: the same key with the
        same request gives the same run, also while it runs; with another request, 409."""
        first = self.execute if wait else self.start
        return await self._idempotent(key, digest, run_id, wait, lambda rid: first(name, node_inputs, rid))

    async def execute_idempotent_in_session(
        self, key: str, digest: str, name: str, inputs: dict[str, Any], run_id: str, session_id: str, wait: bool
    ) -> dict[str, Any]:
        """:meth:`execute_in_session` under an idempotency key (``digest`` covers the
        inputs as sent and the session, not the state they are resolved with)."""
        first = lambda rid: self.execute_in_session(name, inputs, rid, session_id, wait)  # noqa: E731
        return await self._idempotent(key, digest, run_id, wait, first)

    async def _idempotent(
        self, key: str, digest: str, run_id: str, wait: bool, first: Callable[[str], Awaitable[dict[str, Any]]]
    ) -> dict[str, Any]:
        """Bind ``key`` to ``run_id`` and run ``first(run_id)``, unless the key is bound
        already: then the bound run (same request) or 409 (another request). A bound run
        that was never created (its request was refused after the key was bound: a 429, a
        503) is created now, by this repeat of the request."""
        bound_run, bound_digest = await self._claim(key, digest, run_id)
        if bound_digest != digest:
            raise ConflictError(
                f"Idempotency-Key {key!r} was used for a different request (run {bound_run}); use a new key.",
                idempotency_key=key,
                run_id=bound_run,
            )
        if bound_run != run_id and await self._exists(bound_run):  # a repeat of a request that ran
            return await self.wait_for(bound_run) if wait else await self._status(bound_run)
        try:
            return await first(bound_run)  # creating a run is idempotent per id: a race creates it once
        except Exception:
            if self.store is None and bound_run not in self._tasks:  # refused before it ran: the key is free
                self._release_key(bound_run)
            raise

    async def _exists(self, run_id: str) -> bool:
        if run_id in self._tasks:
            return True
        return self.store is not None and await self.store.call("get_run", run_id) is not None

    async def _claim(self, key: str, digest: str, run_id: str) -> tuple[str, str]:
        if self.store is not None:
            return await self.store.call("claim_idempotency_key", key, digest, run_id)  # type: ignore[no-any-return]
        bound = self._keys.setdefault(key, (run_id, digest))
        self._key_of_run.setdefault(bound[0], key)
        return bound

    def _release_key(self, run_id: str) -> None:
        """Without a store, a key lives as long as its run's result (see _forget)."""
        key = self._key_of_run.pop(run_id, None)
        if key is not None:
            del self._keys[key]

    async def _status(self, run_id: str) -> dict[str, Any]:
        return {"run_id": run_id, "status": (await self.get_run(run_id))["status"]}

    async def start(self, name: str, node_inputs: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any]:
        """Start a run and return ``{"run_id", "status"}`` once its inputs are stored."""
        if run_id in self._tasks:
            return {"run_id": run_id, "status": RunStatus.RUNNING.value}
        if not await self._create(name, node_inputs, run_id):
            return await self._status(run_id)
        self._start(_RunPlan(run_id, name, node_inputs))
        return {"run_id": run_id, "status": RunStatus.RUNNING.value}

    async def _create(
        self,
        name: str,
        node_inputs: dict[str, dict[str, Any]],
        run_id: str,
        session_id: str | None = None,
        session_version: int | None = None,
    ) -> bool:
        """Check the workflow exists and store the new run with its inputs (and the version
        of its session's state it read), owned here; False when a run with this id exists.
        The inputs are JSON's types already (see Nexus._checked_run for the Python API), so
        the run goes on with what a resumed run reads back."""
        workflow = self.workflows.get(name) or await self._workflow(name)  # the common case: no await
        known = self.feed.is_tracked(run_id)
        self.feed.track(run_id)  # before the commit, so its run.started event is published here
        if self.store is None:
            self._check_active_in_memory(run_id)
            self.feed.append(run_id, "run.started", run_started(name, session_id, session_version))
            return True
        try:
            created: bool = await self.store.call(
                "create_run",
                run_id,
                name,
                node_inputs,
                owner=self.owner,
                lease_s=self.lease_s,
                session_id=session_id,
                max_active_per_tenant=self.max_runs_per_tenant,
                session_version=session_version,
                definition=workflow.fingerprints,
            )
        except NexusError:
            if not known:
                self.feed.forget(run_id)
            raise
        if not created and not known:
            self.feed.forget(run_id)  # it runs elsewhere: its events are not published here
        return created

    async def _workflow(self, name: str) -> Workflow:
        """The workflow ``name``; one registered while this host started (a pool that grew)
        is looked up once."""
        workflow = self.workflows.get(name)
        if workflow is None and self.lookup is not None:
            workflow = await self.lookup(name)
            if workflow is not None:
                self.workflows.setdefault(name, workflow)
        if workflow is None:
            raise WorkflowNotFoundError(f"No workflow named {name!r} on host {self.host_id}.", workflow=name)
        return workflow

    def _check_active_in_memory(self, run_id: str) -> None:
        """Without a store, the tenant limit counts this host's runs only."""
        limit = self.max_runs_per_tenant
        if limit is None:
            return
        tag = tag_of(run_id)
        if sum(1 for r, t in self._tasks.items() if not t.done() and tag_of(r) == tag) >= limit:
            raise RateLimitedError(
                f"This tenant already has {limit} runs running (NEXUS_MAX_RUNS_PER_TENANT); retry when one ends.",
                retry_after_s=1.0,
                max_runs=limit,
            )

    async def cancel(self, run_id: str) -> dict[str, Any]:
        """Cancel a run at once (its in-flight nodes are cancelled); its final state.

        Raises:
            NotFoundError: no such run. ConflictError: it already finished.
        """
        task = self._tasks.get(run_id)
        if task is not None and not task.done():
            self._cancelled.add(run_id)
            await asyncio.sleep(0)  # a task cancelled before its first step would never record it
            task.cancel()
            return await asyncio.shield(task)
        if self.store is None:
            if task is None:
                raise NotFoundError(f"No run with id {run_id!r}.", run_id=run_id)
            raise _already_finished(run_id, task.result()["status"])
        record = await self._load(run_id)
        if record.done and record.status == RunStatus.CANCELLED and self.retries.is_open:
            return record.result().to_dict()  # a cancel sent again after a restart: it did cancel it
        if record.done:
            raise _already_finished(run_id, record.status.value)
        # Executing on another host (one that adopted it, or owned its id before the pool
        # was resized): mark it cancelled in the store, then tell that host to stop it.
        if record.session_id:  # in a turn of its session, whose log records the end too
            cancelled = RunStatus.CANCELLED
            await self._session_turn(record.session_id, run_id, cancelled, {}, None, [], record.session_version)
        else:
            await self.store.call("finish_run", run_id, RunStatus.CANCELLED, None, None)
        await self._stop_elsewhere(record)
        return await self.get_run(run_id)

    async def _stop_elsewhere(self, record: RunRecord) -> None:
        """Tell the host running ``record``'s run (just cancelled here) to stop it. A host
        that is gone runs nothing; one that does not answer (its event loop blocked) stops
        it at its lease renewal."""
        executor = self._executor(record)
        if executor is None or self.peers is None:
            return
        try:
            await self.peers.call(executor, "stop_cancelled", (record.run_id,), STOP_ELSEWHERE_S)
        except PeerGoneError:
            return
        except TimeoutError:
            logger.warning(
                "run %s: %s did not stop it within %s s; it will at its lease renewal",
                record.run_id,
                executor,
                STOP_ELSEWHERE_S,
            )

    def _executor(self, record: RunRecord) -> str | None:
        """The other host that runs ``record``'s run (its owner in the store), if any."""
        host_id = record.owner.split("/", 1)[0] if record.owner else None
        return host_id if host_id != self.host_id else None

    async def stop_cancelled(self, run_id: str) -> bool:
        """Stop this host's copy of a run that the store says another host cancelled (what
        lease renewal does at its next round, now); whether a copy was stopped. Its callers
        here get the cancelled run, and nothing of it is written any more."""
        task = self._tasks.get(run_id)
        if task is None or task.done() or self.store is None:
            return False
        record = await self._load(run_id)
        if record.owner == self.owner and not record.done:
            return False  # still this host's: nobody cancelled it
        task.cancel()
        await asyncio.wait([task])
        return True

    async def list_runs(self, **filters: Any) -> list[dict[str, Any]]:
        """Stored runs, newest first (see ``Store.list_runs`` for filters)."""
        if self.store is None:
            raise ConflictError("Listing runs needs the store (NEXUS_DURABLE=true).")
        return [_summary(r) for r in await self.store.call("list_runs", **filters)]

    async def wait_for(self, run_id: str, *, here: bool = True) -> dict[str, Any]:
        """The result of a run: from this host when it runs or ran it recently, else from
        the store once the run (wherever it executes) has finished. ``here=False``: from
        the store only (for the run's own task, which must not wait for itself)."""
        delay = 0.02
        while True:
            task = self._tasks.get(run_id) if here else None
            if task is not None and not task.cancelled():
                return await self._outcome(run_id, task)
            record = await self._load(run_id)
            if record.done:
                return record.result().to_dict()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def _outcome(self, run_id: str, task: asyncio.Task[dict[str, Any]]) -> dict[str, Any]:
        """The result of the run's task here; when that copy was stopped because another
        host adopted the run (this one lost its lease), the result from the store once the
        run ends there: the caller waiting here still gets it."""
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not task.cancelled() or (current is not None and current.cancelling()):
                raise  # our own caller was cancelled
            return await self.wait_for(run_id)

    async def get_run(self, run_id: str) -> dict[str, Any]:
        """A run's current state (status, per-node status and timings, outputs or error)."""
        task = self._tasks.get(run_id)
        if self.store is None and task is not None:
            if task.done():
                return task.result()
            return {"run_id": run_id, "status": RunStatus.RUNNING.value, "outputs": {}, "nodes": {}}
        return (await self._load(run_id)).result().to_dict()

    async def wait_events(self, run_id: str, after: int, timeout_s: float) -> tuple[list[dict[str, Any]], bool]:
        """The run's events after ``after`` (waiting up to ``timeout_s`` for new ones), and
        whether the run has ended. Runs this host executes are served from memory; one
        executing on another host (adopted after a crash, or started there before the pool
        grew) is followed on that host (see peers), else read from the store, at most
        every 0.2 s."""
        return await self._wait_events(run_id, after, timeout_s, ask_executor=True)

    async def wait_events_here(self, run_id: str, after: int, timeout_s: float) -> tuple[list[dict[str, Any]], bool]:
        """:meth:`wait_events` without asking another host (what that host answers)."""
        return await self._wait_events(run_id, after, timeout_s, ask_executor=False)

    async def _wait_events(
        self, run_id: str, after: int, timeout_s: float, ask_executor: bool
    ) -> tuple[list[dict[str, Any]], bool]:
        batch = await self.feed.wait(run_id, after, timeout_s, self._stored_events)
        if batch is not None:
            self.metrics.delivered.inc(len(batch.events))
            return batch.to_wire()
        record = await self._load(run_id)  # NotFoundError for an unknown run
        if record.done:
            return [], True
        executor = self._executor(record) if ask_executor else None
        if executor is not None and self.peers is not None:
            args = (run_id, after, timeout_s)
            try:  # that host holds the run's events in memory and answers as they come
                return await self.peers.call(executor, "wait_events_here", args, timeout_s + PEER_GRACE_S)  # type: ignore[no-any-return]
            except (PeerGoneError, TimeoutError):
                pass  # gone or not answering: from the store, as below
        await asyncio.sleep(min(timeout_s, 0.2))
        return [], False

    async def _stored_events(self, run_id: str, after: int) -> list[dict[str, Any]]:
        if self.store is None:
            return []
        return await self.store.call("list_events", "run", run_id, None, after, 1000)  # type: ignore[no-any-return]

    async def _load(self, run_id: str) -> RunRecord:
        record = await self.store.call("get_run", run_id) if self.store is not None else None
        if record is None:
            raise NotFoundError(f"No run with id {run_id!r}.", run_id=run_id)
        return record  # type: ignore[no-any-return]

    def _start(self, plan: _RunPlan) -> asyncio.Task[dict[str, Any]]:
        task = asyncio.get_running_loop().create_task(self._run(plan))
        self._tasks[plan.run_id] = task
        task.add_done_callback(self._count)
        task.add_done_callback(
            lambda _: asyncio.get_running_loop().call_later(self._result_ttl_s, self._forget, plan.run_id, task)
        )
        return task

    def _count(self, task: asyncio.Task[dict[str, Any]]) -> None:
        if not task.cancelled() and task.exception() is None:
            self.metrics.run_finished(task.result())

    def _forget(self, run_id: str, task: asyncio.Task[dict[str, Any]]) -> None:
        if self._tasks.get(run_id) is task:
            del self._tasks[run_id]
            self.feed.forget(run_id)
            self._release_key(run_id)

    async def _run(self, plan: _RunPlan) -> dict[str, Any]:
        for recovery in itertools.count(1):
            try:
                return await self._run_once(plan)
            except StoreUnavailableError as failure:
                if self.store is None or recovery > STORE_RECOVERIES:
                    raise
                try:
                    reloaded = await self._reload_after_store_failure(plan, failure)
                except asyncio.CancelledError:
                    return await self._cancelled_by_user(plan)
                if isinstance(reloaded, dict):
                    return reloaded
                plan = reloaded
        raise AssertionError("unreachable")

    async def _reload_after_store_failure(
        self, plan: _RunPlan, failure: StoreUnavailableError
    ) -> _RunPlan | dict[str, Any]:
        """After a store write of a run failed (a lost connection, a locked or full disk),
        what the store holds is its state: once the store answers, the run resumes from
        there as after a crash (its callers wait meanwhile), or it is found finished or
        adopted elsewhere, and then its result. Up to STORE_RECOVERY_S; then the failure
        is the caller's, and the run is resumed later, when its lease expires."""
        logger.warning("run %s: a store write failed (%s); resuming it from the store", plan.run_id, failure)
        deadline, delay = time.monotonic() + STORE_RECOVERY_S, 0.05
        while True:
            await asyncio.sleep(delay)
            try:
                record = await self._load(plan.run_id)
                if record.done:
                    return record.result().to_dict()
                if record.owner != self.owner:  # adopted by another host meanwhile
                    return await self.wait_for(plan.run_id, here=False)
                return await self._resumed_plan(record, cause="store")
            except StoreUnavailableError as again:
                if time.monotonic() > deadline:
                    raise failure from again
                delay = min(delay * 2, 1.0)

    async def _cancelled_by_user(self, plan: _RunPlan) -> dict[str, Any]:
        """Record the run as cancelled when a user cancelled it (called while handling the
        CancelledError); when it was stopped because this host lost its lease, re-raise:
        the run goes on elsewhere, and the store is left alone."""
        if plan.run_id not in self._cancelled:
            raise asyncio.CancelledError
        self._cancelled.discard(plan.run_id)
        return await self._finish(plan, RunStatus.CANCELLED, None)

    async def _run_once(self, plan: _RunPlan) -> dict[str, Any]:
        workflow = self.workflows.get(plan.workflow)
        if workflow is None:  # adopted after the app stopped registering it
            return await self._finish(plan, RunStatus.FAILED, _no_longer_registered(plan.workflow))
        changed = _changed_since_start(plan, workflow)
        if changed is not None:  # resumed under a workflow it cannot go on with
            return await self._finish(plan, RunStatus.FAILED, changed)
        if plan.crashed is not None:  # its node would most likely take this host down too
            return await self._fail_crashed(plan, *plan.crashed)
        try:
            outcome = await self._run_engine(plan, workflow)
        except TimeoutError:
            return await self._finish(plan, RunStatus.FAILED, _run_timeout(workflow.timeout_s))
        except asyncio.CancelledError:
            return await self._cancelled_by_user(plan)
        status, error = await self._record_end(plan, workflow, outcome)
        result = RunResult(plan.run_id, plan.workflow, status, outcome.outputs, plan.elapsed_ms(), error, outcome.nodes)
        return result.to_dict()

    async def _run_engine(self, plan: _RunPlan, workflow: Workflow) -> RunOutcome:
        events = RunEvents(plan.run_id, self.store, self.feed)
        hooks = RunHooks(events, workflow.feeds_others, commit_starts=plan.resumed)
        work = self.engine.execute(
            workflow,
            plan.node_inputs,
            run_id=plan.run_id,
            workflow_name=plan.workflow,
            hooks=hooks,
            restored=plan.restored,
        )
        if workflow.timeout_s is None:
            return await work
        # Counted from the run's creation, also when it was resumed after a crash.
        return await asyncio.wait_for(work, max(0.0, workflow.timeout_s - (time.time() - plan.created_at)))

    async def _record_end(
        self, plan: _RunPlan, workflow: Workflow, outcome: RunOutcome
    ) -> tuple[RunStatus, dict[str, Any] | None]:
        if plan.session_id:
            completed = outcome.status == RunStatus.COMPLETED
            patches = session_patches(dict(workflow.nodes), workflow.order, outcome.outputs) if completed else []
            return await self._end_in_session(plan, outcome.status, outcome.outputs, outcome.error, patches)
        if self.store is not None:
            await self.store.call_for(
                plan.run_id, "finish_run", plan.run_id, outcome.status, outcome.outputs, outcome.error
            )
        else:
            self.feed.append(plan.run_id, *run_end_event(outcome.status, outcome.outputs, outcome.error))
        return outcome.status, outcome.error

    async def _end_in_session(
        self,
        plan: _RunPlan,
        status: RunStatus,
        outputs: dict[str, Any],
        error: dict[str, Any] | None,
        patches: list[dict[str, Any]],
    ) -> tuple[RunStatus, dict[str, Any] | None]:
        """End a session's run in a turn of its session, which applies the patches and
        records the run's end (with a ``session.run_completed`` event) atomically; the
        (status, error) it ended with."""
        assert plan.session_id is not None
        if self.store is not None:  # our queued events first: the session's host writes the run's last one
            await self.store.call_for(plan.run_id, "ping")
        status, error = await self._session_turn(
            plan.session_id, plan.run_id, status, outputs, error, patches, plan.session_version
        )
        await self._publish_session_end(plan.run_id, status, outputs, error)
        return status, error

    async def _session_turn(self, session_id: str, run_id: str, *end: Any) -> tuple[RunStatus, dict[str, Any] | None]:
        """The session's host ends the run in a turn of the session: ``end`` is the rest of
        SessionService.complete_run's arguments; the (status, error) it ended with."""
        ended: tuple[RunStatus, dict[str, Any] | None] = await self._sessions().call(
            "complete_run", session_id, session_id, run_id, *end
        )
        return ended

    async def _publish_session_end(
        self, run_id: str, status: RunStatus, outputs: dict[str, Any], error: dict[str, Any] | None
    ) -> None:
        """Publish a run's end recorded by its session's host: the events after the last
        one published here, from the store (where that host wrote them), or from memory
        without a store."""
        if self.store is None:
            self.feed.append(run_id, *run_end_event(status, outputs, error))
            return
        after = self.feed.last_seq(run_id)
        self.feed.publish(await self.store.call("list_events", "run", run_id, None, after, 1000))

    async def _finish(self, plan: _RunPlan, status: RunStatus, error: dict[str, Any] | None) -> dict[str, Any]:
        """Finish a run the engine did not finish (cancelled, timed out, unknown workflow)."""
        if plan.session_id:  # in a turn of its session, whose log records the end too
            status, error = await self._end_in_session(plan, status, {}, error, [])
        elif self.store is not None:
            await self.store.call_for(plan.run_id, "finish_run", plan.run_id, status, None, error)
        else:
            self.feed.append(plan.run_id, *run_end_event(status, None, error))
        if self.store is not None:
            return await self.get_run(plan.run_id)
        return RunResult(plan.run_id, plan.workflow, status, {}, plan.elapsed_ms(), error).to_dict()

    # -- ownership ----------------------------------------------------------------------
    def start_maintenance(self) -> None:
        """Renew this host's leases and adopt orphaned runs, every lease_s / 3, and with a
        retention delete the runs past it, every minute; watch the loop for code that
        blocks it (call once, from the host's loop)."""
        if self._watch is None:
            self._watch = LoopWatch(asyncio.get_event_loop(), self.host_id)
            self._watch.start()
        if self.store is not None and self._maintenance is None:
            loop = asyncio.get_event_loop()
            renewal = repeat(f"lease maintenance on {self.host_id}", self.maintain_once, self.lease_s / 3)
            self._maintenance = loop.create_task(renewal)
            if self.retention_s is not None:  # its own task: a long backlog must not hold back lease renewal
                purge = repeat(f"purging expired runs on {self.host_id}", self.purge_expired_runs, PURGE_EVERY_S)
                self._purging = loop.create_task(purge)

    async def maintain_once(self) -> list[str]:
        """One round: renew leases (cancel runs whose lease was lost), adopt orphans; the
        adopted run ids."""
        assert self.store is not None
        running = [run_id for run_id, task in self._tasks.items() if not task.done()]
        kept = set(await self.store.call("renew_leases", self.owner, running, self.lease_s))
        for run_id in set(running) - kept:
            logger.warning("lost the lease on run %s (another host adopted it); stopping here", run_id)
            self._tasks[run_id].cancel()
        adopted: list[str] = await self.store.call("adopt_orphans", self.owner, self.lease_s)
        for run_id in adopted:
            await self._resume(run_id)
        return adopted

    async def purge_expired_runs(self) -> int:
        """Delete the finished runs older than the retention, a chunk per transaction (so
        the runs being written wait for one chunk at most), then the global and session
        events that old; how many runs. Every host does this: a chunk another host
        deleted first is found empty."""
        assert self.store is not None and self.retention_s is not None
        cutoff = time.time() - self.retention_s
        runs: int = await self.store.drain("purge_finished_runs", cutoff, chunk=PURGE_CHUNK)
        await self.store.drain("purge_global_events", cutoff, chunk=PURGE_CHUNK)  # broadcasts without a session
        await self.purge_session_logs(cutoff)
        return runs

    async def purge_session_logs(self, cutoff: float) -> None:
        """Trim session event logs past the retention, going on where the last round
        stopped: at most SESSION_LOG_CHUNKS transactions a round, so a store with many
        old sessions costs each round a bounded time, not a walk over all of them."""
        assert self.store is not None
        for _ in range(SESSION_LOG_CHUNKS):
            after = await self.store.call("purge_session_logs", cutoff, self._session_logs_after, PURGE_CHUNK)
            self._session_logs_after = after or ""
            if after is None:
                return

    async def _resume(self, run_id: str) -> None:
        self._start(await self._resumed_plan(await self._load(run_id)))

    async def _resumed_plan(self, record: RunRecord, cause: str | None = None) -> _RunPlan:
        """How a stored run goes on: from its last committed node. ``cause``: None after
        its host died (its nodes in flight count towards crash_retries), "store" after a
        store write of it failed on this live host (they do not)."""
        run_id = record.run_id
        restored = {
            node_id: (c.record(), c.outputs)
            for node_id, c in record.nodes.items()
            if c.status in (NodeStatus.COMPLETED, NodeStatus.SKIPPED)
        }
        logger.info("resuming run %s of %s (%d nodes already done)", run_id, record.workflow, len(restored))
        assert self.store is not None  # only runs in the store are resumed
        self.feed.track(run_id, await self.store.call("last_event_seq", "run", run_id))
        resumed: dict[str, Any] = {"host": self.host_id, "done": sorted(restored)}
        if cause is not None:
            resumed["cause"] = cause
        # Stored before any node runs again (and so is each node's start, see RunHooks), so
        # a node that kills its host at once is counted all the same.
        await self.store.call("append_event", "run", run_id, "run.resumed", resumed)
        plan = _RunPlan(run_id, record.workflow, record.inputs, record.created_at, record.session_id, restored)
        crashed = _crashed_too_often(record, self.crash_retries) if cause is None else None
        return replace(
            plan,
            session_version=record.session_version,
            definition=record.definition,
            crashed=crashed,
            resumed=True,
        )

    async def _fail_crashed(self, plan: _RunPlan, nodes: list[str], error: dict[str, Any]) -> dict[str, Any]:
        """Fail a run whose ``nodes`` were running at too many host deaths, recording them
        as failed too."""
        assert self.store is not None  # only runs in the store are resumed
        for node_id in nodes:
            self.store.submit_for(
                plan.run_id, "append_event", "run", plan.run_id, *node_event(node_id, NodeStatus.FAILED, error=error)
            )
        return await self._finish(plan, RunStatus.FAILED, error)

    async def health(self) -> dict[str, Any]:
        """This host and its store: ``{"host_id", "store": "ok" | what is wrong}``."""
        return {"host_id": self.host_id, "store": await check_store(self.store)}

    def metrics_text(self) -> str:
        """This host's metrics in Prometheus text format."""
        return self.metrics.text(sum(1 for t in self._tasks.values() if not t.done()), self.executor.left_behind)

    def info(self) -> dict[str, Any]:
        """Host id, process id, workflows and runs in flight."""
        active = sum(1 for t in self._tasks.values() if not t.done())
        return {
            "host_id": self.host_id,
            "owner": self.owner,
            "pid": os.getpid(),
            "workflows": sorted(self.workflows),
            "active_runs": active,
        }

    def close(self) -> None:
        """Stop maintenance, the node threads and the store."""
        for task in (self._maintenance, self._purging):
            if task is not None:
                task.cancel()
        self.executor.shutdown(wait=False)
        if self._watch is not None:
            self._watch.stop()
        if self.store is not None:
            self.store.close()


def _summary(record: RunRecord) -> dict[str, Any]:
    """A run without its outputs and node details (for listings)."""
    result = record.result()
    return {
        "run_id": record.run_id,
        "workflow": record.workflow,
        "status": record.status.value,
        "session_id": record.session_id,
        "created_at": record.created_at,
        "finished_at": record.finished_at,
        "duration_ms": result.duration_ms,
        "error": record.error,
    }


def _already_finished(run_id: str, status: str) -> ConflictError:
    return ConflictError(
        f"Run {run_id!r} already finished ({status}); nothing to cancel.", run_id=run_id, run_status=status
    )


@dataclass(frozen=True)
class _RunPlan:
    """What a run executes: its id, workflow, inputs, when it was created, its session (and
    the version of the state it read), and the node states restored when it resumes."""

    run_id: str
    workflow: str
    node_inputs: dict[str, dict[str, Any]]
    created_at: float = field(default_factory=time.time)
    session_id: str | None = None
    restored: dict[str, tuple[NodeRecord, dict[str, Any] | None]] = field(default_factory=dict)
    session_version: int | None = None  # of the session state the run read
    definition: dict[str, str] | None = None  # the nodes' definition digests when it started
    crashed: tuple[list[str], dict[str, Any]] | None = None  # resumed once too often: the nodes, the error
    resumed: bool = False  # after a crash or a failed store write

    def elapsed_ms(self) -> float:
        """Wall time since the run was created."""
        return round((time.time() - self.created_at) * 1000, 3)


def _crashed_too_often(record: RunRecord, crash_retries: int) -> tuple[list[str], dict[str, Any]] | None:
    """The nodes of a resumed run that were running at more than ``crash_retries`` host
    deaths, this one included, and the run's error (None when they may run again)."""
    deaths = {n: record.crashes.get(n, 0) + 1 for n in record.running_nodes()}
    over = sorted(n for n, count in deaths.items() if count > crash_retries)
    if not over:
        return None
    named = ", ".join(f"{n!r}" for n in over)
    return over, {
        "node": over[0],
        "type": "NodeCrashedError",
        "message": f"node(s) {named} were running when their host died or stopped renewing its lease "
        f"{deaths[over[0]]} times (NEXUS_CRASH_RETRIES={crash_retries}); such a node may be what kills its host "
        "(os._exit, a crash in native code, running out of memory) or holds it up past NEXUS_LEASE_S, so the run "
        "failed rather than take down another host",
    }


def _no_longer_registered(name: str) -> dict[str, Any]:
    return {"node": "", "type": "WorkflowNotFoundError", "message": f"workflow {name!r} is no longer registered"}


def _changed_since_start(plan: _RunPlan, workflow: Workflow) -> dict[str, Any] | None:
    """The error of a resumed run that cannot go on under the workflow registered now
    (None when it can, and for runs stored before digests): a node it completed or
    skipped has another definition now or is gone (its stored outputs would feed nodes
    they were not made for), or a node it has not run needs an input it was not given."""
    now = workflow.fingerprints
    if plan.definition is None or plan.definition == now:
        return None
    done = sorted(n for n in plan.restored if n not in now or plan.definition.get(n) != now[n])
    if done:
        what = f"node(s) {', '.join(map(repr, done))} completed under a definition the workflow no longer has"
        return _workflow_changed(plan.workflow, done[0], what)
    for node_id, fields in workflow.inputs.open_fields.items():
        given = plan.node_inputs.get(node_id, {})
        missing = [f.name for f in fields if f.required and f.name not in given]
        if node_id not in plan.restored and missing:
            what = f"node {node_id!r} now needs input(s) {', '.join(map(repr, missing))}, which the run was not given"
            return _workflow_changed(plan.workflow, node_id, what)
    return None


def _workflow_changed(name: str, node: str, what: str) -> dict[str, Any]:
    message = f"workflow {name!r} changed since this run started: {what}; start the run again"
    return {"node": node, "type": "WorkflowChangedError", "message": message}


def _run_timeout(timeout_s: float | None) -> dict[str, Any]:
    return {"node": "", "type": "RunTimeoutError", "message": f"the run exceeded its timeout of {timeout_s} s"}
