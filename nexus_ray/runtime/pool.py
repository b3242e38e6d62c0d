"""The RunHost pool and a picklable client that routes each run to its host in one hop."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from typing import Any

import ray
from ray.actor import ActorHandle
from ray.exceptions import RayActorError, RayTaskError

from ..security.principal import DEFAULT_TENANT
from ..security.tenancy import known_run, known_session, scoped, scoped_key
from ..settings import Settings
from ..workflow import Workflow
from .batching import BatcherCache, ask_each
from .catalog import WorkflowCatalog
from .errors import submit, translate_ray_error
from .ids import new_run_id, request_hash
from .membership import HOST_LOST_ATTEMPTS, FollowsMembers, MemberView, lost_host_backoff
from .named_actors import NAMESPACE, named_actors
from .pool_manager import PoolManager
from .security_host import start_security_host
from .sessions_client import SessionsClient


class PoolClient(FollowsMembers):
    """Routes a run to the RunHost that owns its id (consistent hashing). Picklable, so the
    ingress replicas carry their own copy and call the host directly."""

    def __init__(
        self, members: dict[str, ActorHandle] | MemberView, batch_wait_s: float = 0.01, batch_inflight: int = 1
    ) -> None:
        self.members = members if isinstance(members, MemberView) else MemberView(members)
        self.batchers = BatcherCache(max_inflight=batch_inflight, max_batch=64, wait_s=batch_wait_s)

    def host_for(self, run_id: str) -> ActorHandle:
        """The actor that hosts ``run_id``."""
        return self.members.hosts[self.members.ring.member_for(run_id)]

    async def execute(self, name: str, node_inputs: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any]:
        """Execute a run on its host (batched with concurrent ones) and return the RunResult dict."""
        self.members.follow()
        for attempt in itertools.count(1):
            host_id = self.members.ring.member_for(run_id)
            batcher = self.batchers.get(host_id, self.members.hosts[host_id])
            try:
                return await batcher.call("execute", name, node_inputs, run_id)  # type: ignore[no-any-return]
            except (RayTaskError, RayActorError) as exc:
                await self._after_failure(exc, attempt)
        raise AssertionError("unreachable")

    async def call(self, method: str, run_id: str, *args: Any) -> Any:
        """Call ``method`` on the host that owns ``run_id`` (one hop). A host removed from
        the pool meanwhile: the call goes again to the current owner (every RunHost method
        is safe to repeat: runs are found by id in the store)."""
        self.members.follow()
        for attempt in itertools.count(1):
            try:
                return await submit(self.host_for(run_id), method, args)
            except (RayTaskError, RayActorError) as exc:
                await self._after_failure(exc, attempt)
        raise AssertionError("unreachable")

    async def _after_failure(self, exc: RayTaskError | RayActorError, attempt: int) -> None:
        """Return to try again, with fresh members (see :meth:`_retry_after`), else raise
        the translated error."""
        if not self._retry_after(exc, attempt):
            raise translate_ray_error(exc) from exc
        await asyncio.sleep(lost_host_backoff(attempt))
        await self.members.refresh()

    def _retry_after(self, exc: RayTaskError | RayActorError, attempt: int) -> bool:
        """Whether a failed call goes again: its host died (it left a resizable pool, or
        the PoolManager that made it crashed and makes new ones), up to HOST_LOST_ATTEMPTS."""
        return isinstance(exc, RayActorError) and attempt < HOST_LOST_ATTEMPTS and self.members.manager is not None

    async def execute_idempotent(
        self,
        key: str,
        name: str,
        node_inputs: dict[str, dict[str, Any]],
        wait: bool,
        tenant: str = DEFAULT_TENANT,
    ) -> dict[str, Any]:
        """Execute or start under an idempotency key (one key space per tenant), on the
        host that owns the key."""
        args = self._idempotent_args(key, name, node_inputs, wait, tenant)
        return await self.call("execute_idempotent", args[0], *args)  # type: ignore[no-any-return]

    def _idempotent_args(
        self, key: str, name: str, node_inputs: dict[str, dict[str, Any]], wait: bool, tenant: str = DEFAULT_TENANT
    ) -> tuple[Any, ...]:
        # The new run's id is drawn so that it belongs to the host that owns the key.
        key = scoped_key(key, tenant)
        run_id = self.run_id_on(self.ring.member_for(key), tenant)
        return (key, request_hash(name, node_inputs), name, node_inputs, run_id, wait)

    def run_id_on(self, host_id: str, tenant: str = DEFAULT_TENANT) -> str:
        """A new run id of ``tenant`` that the ring places on ``host_id`` (about one try per host)."""
        while True:
            run_id = scoped(new_run_id(), tenant)
            if self.ring.member_for(run_id) == host_id:
                return run_id

    async def execute_in_session(
        self,
        name: str,
        inputs: dict[str, Any],
        session_id: str,
        wait: bool,
        idempotency_key: str | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> dict[str, Any]:
        """Run in a session (inputs resolved on the host, with the session's state offered),
        optionally under an idempotency key; the run belongs to ``tenant``."""
        return await self.call(*self._session_run_args(name, inputs, session_id, wait, idempotency_key, tenant))  # type: ignore[no-any-return]

    def _session_run_args(
        self,
        name: str,
        inputs: dict[str, Any],
        session_id: str,
        wait: bool,
        key: str | None,
        tenant: str = DEFAULT_TENANT,
    ) -> tuple[Any, ...]:
        """(method, routing id, *args) of a run in a session."""
        known_session(session_id)  # before a RunHost is asked to look it up
        if key is None:
            run_id = scoped(new_run_id(), tenant)
            return "execute_in_session", run_id, name, inputs, run_id, session_id, wait
        key = scoped_key(key, tenant)
        run_id = self.run_id_on(self.ring.member_for(key), tenant)
        digest = request_hash(name, {"inputs": inputs, "session_id": session_id})
        return "execute_idempotent_in_session", key, key, digest, name, inputs, run_id, session_id, wait

    def run_call(
        self, name: str, inputs: dict[str, Any], wait: bool, key: str | None = None, session_id: str | None = None
    ) -> tuple[Any, ...]:
        """(method, routing id, *args) of a run request of the Python API: ``inputs`` are
        node inputs, or with ``session_id`` the inputs as given (the host resolves them
        with the session's state); ``wait``: execute, else start."""
        if session_id is not None:
            return self._session_run_args(name, inputs, session_id, wait, key)
        if key is not None:
            args = self._idempotent_args(key, name, inputs, wait)
            return ("execute_idempotent", args[0], *args)
        run_id = new_run_id()
        return ("execute" if wait else "start", run_id, name, inputs, run_id)

    async def run(
        self, name: str, inputs: dict[str, Any], wait: bool, key: str | None = None, session_id: str | None = None
    ) -> dict[str, Any]:
        """Execute or start a run (see :meth:`run_call`): its RunResult dict, or
        ``{"run_id", "status"}`` when not waiting. Plain executions are batched."""
        method, routing_id, *args = self.run_call(name, inputs, wait, key, session_id)
        if method == "execute":
            return await self.execute(*args)
        return await self.call(method, routing_id, *args)  # type: ignore[no-any-return]

    def run_blocking(
        self, name: str, inputs: dict[str, Any], wait: bool, key: str | None = None, session_id: str | None = None
    ) -> dict[str, Any]:
        """:meth:`run` from synchronous code (scripts, notebooks)."""
        return self.call_blocking(*self.run_call(name, inputs, wait, key, session_id))  # type: ignore[no-any-return]

    async def start(self, name: str, node_inputs: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any]:
        """Start a run without waiting for it: ``{"run_id", "status"}``."""
        return await self.call("start", run_id, name, node_inputs, run_id)  # type: ignore[no-any-return]

    async def wait_events(self, run_id: str, after: int, timeout_s: float) -> tuple[list[dict[str, Any]], bool]:
        """A run's events after ``after`` (a long poll of up to ``timeout_s``) and whether it ended."""
        known_run(run_id)
        return await self.call("wait_events", run_id, run_id, after, timeout_s)  # type: ignore[no-any-return]

    async def health(self) -> list[dict[str, Any]]:
        """Each host's health (``{"host_id", "store"}``, or ``{"host_id", "error"}``)."""
        return await ask_each(self.hosts, "health")

    async def metrics_text(self) -> list[str]:
        """Each answering host's metrics (Prometheus text)."""
        return [text for text in await ask_each(self.hosts, "metrics_text") if isinstance(text, str)]

    async def get_run(self, run_id: str) -> dict[str, Any]:
        """A run's current state."""
        known_run(run_id)
        return await self.call("get_run", run_id, run_id)  # type: ignore[no-any-return]

    async def cancel(self, run_id: str) -> dict[str, Any]:
        """Cancel a run; its final state."""
        known_run(run_id)
        return await self.call("cancel", run_id, run_id)  # type: ignore[no-any-return]

    async def list_runs(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """Runs from the store, newest first (any host can read them)."""
        return await self.call("list_runs", filters.get("before") or "", filters)  # type: ignore[no-any-return]

    def call_blocking(self, method: str, run_id: str, *args: Any) -> Any:
        """Like :meth:`call`, for synchronous callers."""
        self.members.refresh_blocking()
        for attempt in itertools.count(1):
            try:
                return ray.get(submit(self.host_for(run_id), method, args))
            except (RayTaskError, RayActorError) as exc:
                if not self._retry_after(exc, attempt):
                    raise translate_ray_error(exc) from exc
                time.sleep(lost_host_backoff(attempt))
                self.members.refresh_blocking(force=True)
        raise AssertionError("unreachable")


class RunHostPool:
    """Starts the app's actors: the workflow catalog, the PoolManager (which creates and
    resizes the RunHost and SessionHost pools) and the SecurityHost.

    Args:
        workflows: Name → workflow, handed to each host (and again after a restart).
        settings: The app's settings (store, leases, threads, batching, scaling).
        entries: The registered workflows with their schemas (for watching channels).
        deployment: Deploy to a cluster under this name: the actors are detached (they
            outlive the process that made them) and named after it, and those of an
            earlier deployment of the same name are stopped first (their unfinished runs
            resume on the new hosts from the store).
    """

    def __init__(
        self,
        workflows: dict[str, Workflow],
        settings: Settings,
        entries: dict[str, Any] | None = None,
        deployment: str | None = None,
    ) -> None:
        # Actors do not share the driver's working directory: hand them absolute paths.
        config = settings.portable() | {"home": str(settings.home.resolve())}
        # Several apps may share one Ray cluster: each has its own actor name prefix.
        self.prefix = f"nexus-{deployment}" if deployment else f"nexus-{secrets.token_hex(4)}"
        lifetime = {"lifetime": "detached"} if deployment else {}
        if deployment:
            stop_deployment(self.prefix)
        self.catalog = WorkflowCatalog.options(name=f"{self.prefix}-catalog", namespace=NAMESPACE, **lifetime).remote(  # type: ignore[attr-defined]
            workflows, entries
        )
        self.manager = PoolManager.options(name=f"{self.prefix}-pool-manager", namespace=NAMESPACE, **lifetime).remote(  # type: ignore[attr-defined]
            self.prefix,
            self.catalog,
            config,
            settings.host_pool_sizes(),
            settings.scaling.model_dump(),
            settings.session_isolation == "dedicated",
            bool(deployment),
        )
        version, hosts = ray.get(self.manager.members.remote("session"))
        session_view = MemberView(hosts, self.manager, "session", version)
        self._sessions = SessionsClient(session_view, self.prefix, config, settings.session_isolation == "dedicated")
        version, hosts = ray.get(self.manager.members.remote("run"))
        run_view = MemberView(hosts, self.manager, "run", version)
        self.security = start_security_host(f"{self.prefix}-security", NAMESPACE, settings, bool(deployment))
        self._client = PoolClient(run_view, settings.batch_wait_ms / 1000, settings.batch_inflight)

    @property
    def hosts(self) -> dict[str, ActorHandle]:
        """The RunHosts now."""
        self._client.members.refresh_blocking(force=True)
        return self._client.hosts

    @property
    def session_hosts(self) -> dict[str, ActorHandle]:
        """The shared SessionHosts now."""
        self._sessions.members.refresh_blocking(force=True)
        return self._sessions.hosts

    def client(self) -> PoolClient:
        """The picklable router over the RunHosts (it follows the pool as it resizes)."""
        return self._client

    def sessions(self) -> SessionsClient:
        """A picklable router over the SessionHosts."""
        return self._sessions

    def resize(self, kind: str, size: int) -> int:
        """Resize the "run" or "session" pool to ``size`` hosts now (see PoolManager); calls
        from this process go by the new members from then on. (Its synchronous calls
        otherwise look the members up at most once a second: the runs submitted right
        after growing the pool all went to the old host.)"""
        resized: int = ray.get(self.manager.resize.remote(kind, size))
        view = self._client.members if kind == "run" else self._sessions.members
        view.refresh_blocking(force=True)
        return resized

    def history(self, kind: str) -> list[tuple[float, int]]:
        """(seconds since start, hosts) at each size change of the "run" or "session" pool."""
        return ray.get(self.manager.history.remote(kind))  # type: ignore[no-any-return]

    def register(self, name: str, workflow: Workflow, entry: Any = None) -> None:
        """Add a workflow to the catalog (hosts created later load it from there, hosts
        that miss it look it up there), then to every host (watching channels pick up
        ``entry``)."""
        ray.get(self.catalog.put.remote(name, workflow, entry))
        ray.get([h.register.remote(name, workflow) for h in self.hosts.values()])

    def unregister(self, name: str) -> None:
        """Remove a workflow from the catalog (channels stop offering it) and every host."""
        ray.get(self.catalog.remove.remote(name))
        ray.get([h.unregister.remote(name) for h in self.hosts.values()])

    def info(self) -> list[dict[str, Any]]:
        """Each host's info."""
        return ray.get([h.info.remote() for h in self.hosts.values()])  # type: ignore[no-any-return]

    def shutdown(self) -> None:
        """Kill every host."""
        ray.get(self.manager.shutdown.remote())
        stop_deployment(self.prefix)


def stop_deployment(prefix: str) -> int:
    """Stop every actor named ``prefix-...`` (an app's catalog, PoolManager, hosts,
    SecurityHost, dedicated session hosts); how many there were."""
    named = named_actors(f"{prefix}-")
    for handle in named.values():
        ray.kill(handle, no_restart=True)
    return len(named)
