"""The Nexus facade: register workflows once, serve them on every channel."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConflictError, InputValidationError, InvalidRequestError, RuntimeUnavailableError
from .json_form import as_stored
from .registry import Catalog, RegisteredWorkflow, make_registered
from .runtime.ids import IDEMPOTENCY_KEY_RULE, valid_idempotency_key
from .runtime.paging import EVENTS_MAX, event_after, page_cursor, page_limit, run_status
from .security.tenancy import known_run
from .settings import Settings, load_settings
from .workflow import RunResult, Workflow, WorkflowBuilder
from .workflow.typed import node_class_of

# The app serving from this process (a list, so start/stop need no global statement).
_SERVING: list[Nexus] = []


@dataclass(frozen=True)
class ServerInfo:
    """Where a started app answers, and how it is served."""

    url: str
    docs_url: str
    workflows_url: str
    health_url: str
    ingress: str
    ray: str
    logs_dir: str | None = None  # an embedded Ray's logs (the hosts' warnings), while it runs


class Nexus:
    """A nexus_ray application.

    Example:
        >>> app = Nexus(port=8000)
        >>> app.register("double_plus_one", builder)
        >>> app.start()            # local Ray + Serve; REST at http://127.0.0.1:8000
        >>> app.execute("double_plus_one", x=5).outputs["add_one"]["result"]["value"]
        11

    Args:
        settings: A complete Settings object; or give fields as keyword arguments
            (``port=...``, ``host=...``). Unset fields come from ``NEXUS_*`` variables.
    """

    def __init__(self, *, settings: Settings | None = None, **options: Any) -> None:
        self.settings = settings if settings is not None else load_settings(**options)
        self._catalog = Catalog()
        self._runtime: Any = None  # runtime.ray_cluster.RayRuntime once Ray is up
        self._pool: Any = None  # runtime.pool.RunHostPool
        self._deployment: str | None = None  # see ingress_application(deployment=)
        # Event subscriptions per event loop (runtime.subscriptions.EventHub by kind).
        self._hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]]
        self._hubs = weakref.WeakKeyDictionary()
        self._server: ServerInfo | None = None

    # -- registration -------------------------------------------------------------------
    def register(
        self,
        name: str,
        workflow: Workflow | WorkflowBuilder | Callable[..., Any],
        *,
        description: str | None = None,
        rate_limit: str | None = None,
    ) -> RegisteredWorkflow:
        """Register a workflow (a builder, a built workflow, or a typed function).

        Args:
            rate_limit: Executions per principal of this workflow, e.g. ``"10/minute"``
                (on every channel, on top of NEXUS_RATE_LIMIT).

        Raises:
            WorkflowError: invalid name or definition.
            ConflictError: the name is already registered.
            ConfigurationError: a malformed rate limit.
        """
        if callable(workflow) and not isinstance(workflow, (Workflow, WorkflowBuilder)):
            workflow = function_workflow(workflow, description)
        item = make_registered(name, workflow, description, rate_limit)
        self._catalog.add(item)
        if self._pool is not None:
            self._ship(item.workflow)
            try:
                self._pool.register(name, item.workflow, item)
            except TypeError as exc:
                self._catalog.remove(name)
                raise _unshippable(exc, {name: item.workflow}) from None
            self._await_channels()
        return item

    def unregister(self, name: str) -> None:
        """Remove a workflow; while serving, its route and MCP tool go away at once (MCP
        clients get ``tools/list_changed``); runs already going finish.

        Raises:
            WorkflowNotFoundError: no workflow of that name (with close matches).
        """
        self._catalog.remove(name)
        if self._pool is not None:
            self._pool.unregister(name)
            self._await_channels()

    def _await_channels(self) -> None:
        """While serving: wait until the ingress lists exactly the current workflows (its
        replicas update themselves from the catalog actor; no redeploy)."""
        if self._server is not None:
            from .channels.http.ingress import wait_until_ready

            wait_until_ready(self._server.url, set(self._catalog.items()), self.settings.ready_timeout_s)

    def workflow(
        self, fn: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None
    ) -> Any:
        """Decorator: register a typed function as a one-node workflow named after it."""

        def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
            self.register(name or func.__name__, func, description=description or (func.__doc__ or "").strip())
            return func

        return wrap(fn) if fn is not None else wrap

    @property
    def workflows(self) -> dict[str, RegisteredWorkflow]:
        """Registered workflows by name."""
        return self._catalog.items()

    # -- security -------------------------------------------------------------------------
    def define_role(self, name: str, grants: dict[str, list[str]]) -> None:
        """Define (or redefine) a role: ``{workflow pattern: [actions]}``, actions among
        execute, read, cancel, manage_sessions, admin. Before :meth:`start`.

        Raises:
            ConfigurationError: unknown actions or a malformed role.
            ConflictError: the app is already serving.
        """
        from .security.rbac import Rbac

        if self._server is not None:
            raise ConflictError("Define roles before start(): replicas read them when they start.")
        Rbac({name: grants})  # validates
        self.settings = self.settings.model_copy(update={"roles": {**self.settings.roles, name: grants}})

    def create_api_key(self, tenant: str, roles: list[str] | str, name: str = "") -> dict[str, Any]:
        """A new API key (stored hashed): its record plus ``api_key``, the only time the
        full key is shown. Serving apps accept it within a second."""
        from .security.admin import admin_store, create_api_key

        with admin_store(self.settings) as store:
            return create_api_key(store, tenant, [roles] if isinstance(roles, str) else list(roles), name)

    def list_api_keys(self) -> list[dict[str, Any]]:
        """Every API key's record (never the key)."""
        from .security.admin import admin_store, list_api_keys

        with admin_store(self.settings) as store:
            return list_api_keys(store)

    def revoke_api_key(self, key_id: str) -> dict[str, Any]:
        """Revoke an API key for good; serving apps refuse it within a second.

        Raises:
            NotFoundError: no key with that id.
        """
        from .security.admin import admin_store, revoke_api_key

        with admin_store(self.settings) as store:
            return revoke_api_key(store, key_id)

    # -- lifecycle ----------------------------------------------------------------------
    def start(self, block: bool = False) -> ServerInfo:
        """Start (or join) Ray, the RunHost pool and the Serve HTTP ingress; return when the
        ingress really answers 2xx, serving in the background (a notebook goes on). With
        ``block=True``, serve until Ctrl-C, then stop. Idempotent.

        Raises:
            ConfigurationError: settings that cannot work, e.g. auth on (production) and no
                JWT key or API key configured; the message says what to set.
            ConflictError: another app already serves from this process (see :meth:`serving`).
        """
        if self._server is not None:
            return self._server
        serving = Nexus.serving()
        if serving is not None:
            raise ConflictError(
                f"Another Nexus app already serves from this process, at {serving.url}: Ray Serve runs one "
                "HTTP proxy and one Nexus ingress per Ray cluster. Stop it first (Nexus.serving().stop()), "
                "or register these workflows with it.",
                url=serving.url,
            )
        from .security.admin import check_security

        check_security(self.settings)
        self._ensure_runtime()
        self._deploy_ingress()
        runtime = self._runtime
        url = f"http://{client_host(self.settings.host)}:{self.settings.port}"
        self._server = ServerInfo(
            url=url,
            docs_url=f"{url}/docs",
            workflows_url=f"{url}/workflows",
            health_url=f"{url}/health",
            ingress="HAProxy" if runtime.ingress == "haproxy" else "Serve default proxy",
            ray="embedded local Ray" if runtime.started_here else "joined Ray cluster",
            logs_dir=runtime.logs_dir,
        )
        _SERVING[:] = [self]
        info = self._server
        if block:
            self._serve_until_interrupted()
        return info

    def _serve_until_interrupted(self) -> None:
        import time

        try:
            while True:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def stop(self) -> None:
        """Stop what this app started: on its own embedded Ray, Ray and every process it
        started; on a shared Ray, its ingress and its RunHost actors only."""
        runtime, pool, server = self._release()
        if runtime is None:
            return
        if not runtime.started_here:
            if server is not None:
                _delete_ingress()
            pool.shutdown()
        runtime.stop()

    def _release(self) -> tuple[Any, Any, ServerInfo | None]:
        """Forget the runtime, pool and server (returned, for stopping or not) and stop
        counting as this process's serving app."""
        held = self._runtime, self._pool, self._server
        self._runtime, self._pool, self._server = None, None, None
        if self in _SERVING:
            _SERVING.remove(self)
        return held

    @staticmethod
    def serving() -> Nexus | None:
        """The app serving HTTP from this process (started and not stopped), or None. There
        is at most one: Ray Serve runs one HTTP proxy and one Nexus ingress per cluster, so
        :meth:`start` refuses a second one (ConflictError) instead of replacing the first's
        ingress. Handy in a notebook whose ``app`` variable was rebound."""
        return _SERVING[0] if _SERVING else None

    def __enter__(self) -> Nexus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL of the running HTTP ingress."""
        if self._server is None:
            raise RuntimeUnavailableError("The app is not serving; call start() first.")
        return self._server.url

    # -- execution ----------------------------------------------------------------------
    def execute(
        self,
        name: str,
        inputs: dict[str, Any] | None = None,
        /,
        *,
        idempotency_key: str | None = None,
        session_id: str | None = None,
        **kw_inputs: Any,
    ) -> RunResult:
        """Run a workflow on the RunHost pool and wait for it (starts Ray if needed).

        Inputs as a dict, as keywords, or both (keywords win). Works in scripts and
        notebooks; in async code use :meth:`aexecute`. With ``idempotency_key``, the same
        key and inputs give the same run (a different request with it: ConflictError).
        With ``session_id``, the run belongs to that session: its state is offered as
        inputs (explicit inputs win) and SessionUpdateNode patches are applied on completion.

        Raises:
            WorkflowNotFoundError, InputValidationError, ConflictError, RuntimeUnavailableError.
        """
        return RunResult.from_dict(self._run(name, _merged(name, inputs, kw_inputs), True, idempotency_key, session_id))

    async def aexecute(
        self,
        name: str,
        inputs: dict[str, Any] | None = None,
        /,
        *,
        idempotency_key: str | None = None,
        session_id: str | None = None,
        **kw_inputs: Any,
    ) -> RunResult:
        """Async :meth:`execute` (concurrent calls share actor calls)."""
        run = await self._arun(name, _merged(name, inputs, kw_inputs), True, idempotency_key, session_id)
        return RunResult.from_dict(run)

    def submit(
        self,
        name: str,
        inputs: dict[str, Any] | None = None,
        /,
        *,
        idempotency_key: str | None = None,
        session_id: str | None = None,
        **kw_inputs: Any,
    ) -> str:
        """Start a run without waiting; its run id (see :meth:`get_run`, :meth:`cancel`)."""
        return str(self._run(name, _merged(name, inputs, kw_inputs), False, idempotency_key, session_id)["run_id"])

    async def asubmit(
        self,
        name: str,
        inputs: dict[str, Any] | None = None,
        /,
        *,
        idempotency_key: str | None = None,
        session_id: str | None = None,
        **kw_inputs: Any,
    ) -> str:
        """Async :meth:`submit`."""
        run = await self._arun(name, _merged(name, inputs, kw_inputs), False, idempotency_key, session_id)
        return str(run["run_id"])

    def get_run(self, run_id: str) -> RunResult:
        """A run's current state. Raises NotFoundError for an unknown id."""
        _check_run_id(run_id)
        self._ensure_runtime()
        return RunResult.from_dict(self._pool.client().call_blocking("get_run", run_id, run_id))

    async def aget_run(self, run_id: str) -> RunResult:
        """Async :meth:`get_run`."""
        _check_run_id(run_id)
        return RunResult.from_dict(await (await self._apool()).client().get_run(run_id))

    def cancel(self, run_id: str) -> RunResult:
        """Cancel a run at once; its final state. ConflictError when it already finished."""
        _check_run_id(run_id)
        self._ensure_runtime()
        return RunResult.from_dict(self._pool.client().call_blocking("cancel", run_id, run_id))

    async def acancel(self, run_id: str) -> RunResult:
        """Async :meth:`cancel`."""
        _check_run_id(run_id)
        return RunResult.from_dict(await (await self._apool()).client().cancel(run_id))

    def list_runs(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        session_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> list[dict[str, Any]]:
        """Stored runs, newest first (``limit`` 1-500); pass the last run id as ``cursor``
        for the next page. InvalidRequestError names a bad limit, cursor, status or filter."""
        filters = _run_filters(workflow, status, session_id, limit, cursor)
        self._ensure_runtime()
        return self._pool.client().call_blocking("list_runs", cursor or "", filters)  # type: ignore[no-any-return]

    async def alist_runs(
        self,
        *,
        workflow: str | None = None,
        status: str | None = None,
        session_id: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> list[dict[str, Any]]:
        """Async :meth:`list_runs`."""
        filters = _run_filters(workflow, status, session_id, limit, cursor)
        return await (await self._apool()).client().list_runs(filters)  # type: ignore[no-any-return]

    def _run(
        self, name: str, inputs: dict[str, Any], wait: bool, key: str | None, session_id: str | None
    ) -> dict[str, Any]:
        """Execute (``wait``) or start a run, checked before Ray is started."""
        name, sent = self._checked_run(name, inputs, key, session_id)
        self._ensure_runtime()
        return self._pool.client().run_blocking(name, sent, wait, key, session_id)  # type: ignore[no-any-return]

    async def _arun(
        self, name: str, inputs: dict[str, Any], wait: bool, key: str | None, session_id: str | None
    ) -> dict[str, Any]:
        name, sent = self._checked_run(name, inputs, key, session_id)
        return await (await self._apool()).client().run(name, sent, wait, key, session_id)  # type: ignore[no-any-return]

    def _checked_run(
        self, name: str, inputs: dict[str, Any], key: str | None, session_id: str | None
    ) -> tuple[str, dict[str, Any]]:
        """The workflow's name and what to send: its node inputs, or in a session the
        inputs as given (the host resolves them with the session's state)."""
        _check_run_options(key, session_id)
        item = self._catalog.get(name)
        if self.settings.durable:
            # The one channel that takes Python objects (the others parse JSON): the run goes
            # on with what the store keeps, so a resumed run gets the same values.
            inputs = as_stored(inputs, "The run's inputs")
        if session_id is not None:
            return item.name, inputs
        return item.name, item.workflow.resolve_inputs(inputs, name)

    # -- sessions -------------------------------------------------------------------------
    def create_session(
        self,
        state: dict[str, Any] | None = None,
        *,
        ttl_s: float | None = None,
        channel: str | None = None,
        dedicated: bool | None = None,
    ) -> dict[str, Any]:
        """A new session: ``{"session_id", "state", "version": 1, ...}``; ``channel`` (e.g.
        "api", "cli") is recorded in its ``session.created`` event. ``dedicated=True`` gives
        it its own Ray actor (default: ``session_isolation``)."""
        self._ensure_runtime()
        return self._pool.sessions().create_blocking(state, ttl_s, channel, dedicated)  # type: ignore[no-any-return]

    def sync_session(self, session_id: str, channel: str) -> dict[str, Any]:
        """The session's current state and version, recording that ``channel`` synced it."""
        self._ensure_runtime()
        return self._pool.sessions().call_blocking("sync", session_id, session_id, channel)  # type: ignore[no-any-return]

    def broadcast_event(
        self, event_type: str, data: dict[str, Any] | None = None, *, session_id: str | None = None
    ) -> dict[str, Any]:
        """Append a custom event to a session's ordered log (no session: the global log);
        the event with its sequence number. Types starting ``session.``/``run.``/``node.`` are
        reserved."""
        self._ensure_runtime()
        key = session_id or ""
        return self._pool.sessions().call_blocking("emit", key, session_id, event_type, data or {})  # type: ignore[no-any-return]

    def emit(
        self, event_type: str, data: dict[str, Any] | None = None, *, session_id: str | None = None
    ) -> dict[str, Any]:
        """Same as :meth:`broadcast_event`."""
        return self.broadcast_event(event_type, data, session_id=session_id)

    async def events(
        self, *, run_id: str | None = None, session_id: str | None = None, after: int = 0
    ) -> AsyncIterator[dict[str, Any]]:
        """Follow a run's or a session's events live, from sequence number ``after``:
        ``async for event in app.events(run_id=...)``. Ordered, nothing skipped; ends after
        a run's last event (run.completed/failed/cancelled) or a session's end
        (session.deleted/expired).

        Raises:
            InvalidRequestError: not exactly one of run_id and session_id. NotFoundError.
        """
        if (run_id is None) == (session_id is None):
            raise InvalidRequestError("Pass exactly one of run_id= and session_id= to app.events().")
        pool = await self._apool()
        hubs = self._hubs.setdefault(asyncio.get_running_loop(), {})
        kind, log_id = ("run", run_id) if run_id is not None else ("session", session_id)
        hub = hubs.get(kind)
        if hub is None:
            from .runtime.subscriptions import EventHub

            source = pool.client() if kind == "run" else pool.sessions()
            hub = hubs[kind] = EventHub(kind, source.wait_events)
        async for event in hub.subscribe(str(log_id), after):
            if event is not None:
                yield event

    def get_events(
        self, session_id: str | None = None, event_type: str | None = None, *, limit: int = 100, after: int = 0
    ) -> list[dict[str, Any]]:
        """A session's events (or the global log's) after sequence number ``after``, oldest
        first (``limit`` 1-1000)."""
        limit, after = page_limit(limit, EVENTS_MAX), event_after(after)
        if event_type is not None and not isinstance(event_type, str):
            raise InvalidRequestError(f"event_type must be an event type name, got {event_type!r}.", field="event_type")
        self._ensure_runtime()
        key = session_id or ""
        return self._pool.sessions().call_blocking("events", key, session_id, event_type, after, limit)  # type: ignore[no-any-return]

    def get_session(self, session_id: str) -> dict[str, Any]:
        """A session's state and version (NotFoundError when missing or expired)."""
        self._ensure_runtime()
        return self._pool.sessions().call_blocking("get", session_id, session_id)  # type: ignore[no-any-return]

    def update_session(
        self,
        session_id: str,
        change: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]],
        *,
        if_version: int | None = None,
    ) -> dict[str, Any]:
        """Change a session in one turn: a JSON merge patch, or a function from the current
        state to the new one (it runs in the session's host; turns of a session never
        overlap, so ``lambda s: {**s, "n": s["n"] + 1}`` is a safe increment). With
        ``if_version``, only if the session is still at that version (else
        PreconditionFailedError)."""
        self._ensure_runtime()
        client = self._pool.sessions()
        method = "turn" if callable(change) else "patch"
        return client.call_blocking(method, session_id, session_id, change, if_version)  # type: ignore[no-any-return]

    def delete_session(self, session_id: str) -> None:
        """Delete a session (NotFoundError when there is none)."""
        self._ensure_runtime()
        sessions = self._pool.sessions()
        sessions.call_blocking("delete", session_id, session_id)
        sessions.release(session_id)

    def list_sessions(self, *, limit: int = 50, cursor: str | None = None) -> list[dict[str, Any]]:
        """Live sessions, newest first (``limit`` 1-500); pass the last session id as
        ``cursor`` for more."""
        limit, cursor = page_limit(limit), page_cursor(cursor, "session")
        self._ensure_runtime()
        return self._pool.sessions().call_blocking("list", cursor or "", limit, cursor)  # type: ignore[no-any-return]

    # -- async session API (for event loops: batched with concurrent calls) ----------------
    async def acreate_session(
        self,
        state: dict[str, Any] | None = None,
        *,
        ttl_s: float | None = None,
        channel: str | None = None,
        dedicated: bool | None = None,
    ) -> dict[str, Any]:
        """Async :meth:`create_session`."""
        sessions = (await self._apool()).sessions()
        return await sessions.create(state, ttl_s, dedicated, channel=channel)  # type: ignore[no-any-return]

    async def aget_session(self, session_id: str) -> dict[str, Any]:
        """Async :meth:`get_session`."""
        return await (await self._apool()).sessions().get(session_id)  # type: ignore[no-any-return]

    async def aupdate_session(
        self,
        session_id: str,
        change: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]],
        *,
        if_version: int | None = None,
    ) -> dict[str, Any]:
        """Async :meth:`update_session`."""
        method = "turn" if callable(change) else "patch"
        return await (await self._apool()).sessions().call(method, session_id, session_id, change, if_version)  # type: ignore[no-any-return]

    async def adelete_session(self, session_id: str) -> None:
        """Async :meth:`delete_session`."""
        await (await self._apool()).sessions().delete(session_id)

    async def alist_sessions(self, *, limit: int = 50, cursor: str | None = None) -> list[dict[str, Any]]:
        """Async :meth:`list_sessions`."""
        limit, cursor = page_limit(limit), page_cursor(cursor, "session")
        return await (await self._apool()).sessions().list(limit, cursor)  # type: ignore[no-any-return]

    def runtime_pool(self) -> Any:
        """The host pool (starting Ray and the hosts if needed, but no HTTP ingress): what
        channels hosted elsewhere than the ingress, like ``nexus mcp --app``, run on."""
        self._ensure_runtime()
        return self._pool

    # -- internals ----------------------------------------------------------------------
    async def _apool(self) -> Any:
        """The host pool, for async methods: starting Ray, when needed, off the event loop."""
        if self._pool is None:
            await asyncio.to_thread(self._ensure_runtime)
        return self._pool

    def _ensure_runtime(self) -> None:
        if self._pool is not None:
            return
        from .runtime.cluster_capacity import resource_wait_s
        from .runtime.pool import RunHostPool
        from .runtime.ray_cluster import RayRuntime, will_embed

        if will_embed(self.settings):
            self._check_store()
        runtime = RayRuntime(self.settings)
        runtime.start()
        self._runtime = runtime
        workflows = {name: item.workflow for name, item in self._catalog.items().items()}
        for workflow in workflows.values():
            self._ship(workflow)
        wait_s = resource_wait_s(self.settings.resource_wait_s, embedded=runtime.started_here)
        settings = self.settings.model_copy(update={"resource_wait_s": wait_s})
        from ray.exceptions import RayActorError

        from .runtime.errors import translate_ray_error

        try:
            self._pool = RunHostPool(workflows, settings, self._catalog.items(), self._deployment)
        except (TypeError, RayActorError) as exc:
            self._runtime = None
            runtime.stop()
            if isinstance(exc, TypeError):
                raise _unshippable(exc, workflows) from None
            raise translate_ray_error(exc) from None

    def _check_store(self) -> None:
        """On an embedded Ray the hosts open the store on this machine: open it here first,
        so a store that cannot work (NEXUS_HOME not writable, PostgreSQL down, a newer
        schema) is one clear error before Ray starts, not failing host actors. (On another
        Ray the hosts may reach a store this process cannot: they report it themselves.)"""
        if self.settings.durable:
            from .security.admin import admin_store

            with admin_store(self.settings):
                pass

    @staticmethod
    def _ship(workflow: Workflow) -> None:
        from .runtime.code_shipping import ship_by_value

        ship_by_value(workflow)

    def ingress_application(self, deployment: str | None = None) -> Any:
        """The HTTP ingress as a Serve application (``serve.run`` it), starting the runtime
        on the Ray this process uses when needed. With ``deployment`` (see
        :mod:`nexus_ray.deploy`), the runtime's actors are detached, so they outlive this
        process, and named after it.

        Raises:
            ConflictError: the runtime already runs under another deployment name.
        """
        # The facade composes the HTTP channel here (imported lazily: channels sit above).
        from .channels.http.ingress import ingress_application

        if deployment != self._deployment and self._pool is not None:
            raise ConflictError(f"The runtime already runs (deployment {self._deployment!r}); stop() it first.")
        self._deployment = deployment
        self._ensure_runtime()
        pool = self._pool
        return ingress_application(
            self._catalog.items(), pool.client(), pool.sessions(), self.settings, pool.catalog, pool.security
        )

    def detach(self) -> None:
        """Let go of the runtime without stopping it (a deployment keeps serving from the
        cluster); disconnect from Ray when this process joined it by address."""
        runtime, _, _ = self._release()
        if runtime is not None and runtime.mode == "address":
            runtime.stop()  # joined by address: this only disconnects

    def _deploy_ingress(self) -> None:
        from .channels.http.ingress import deploy_ingress, wait_until_ready

        deploy_ingress(self.ingress_application(), self.settings)
        url = f"http://{client_host(self.settings.host)}:{self.settings.port}"
        wait_until_ready(url, set(self._catalog.items()), self.settings.ready_timeout_s)


def function_workflow(fn: Callable[..., Any], description: str | None = None) -> Workflow:
    """A one-node workflow whose node (id = the function's name) calls ``fn``."""
    node_id = getattr(fn, "__name__", "function")
    builder = WorkflowBuilder(description=description or (fn.__doc__ or "").strip())
    builder.add_node(node_class_of(fn) or fn, node_id)
    return builder.build()


def client_host(host: str) -> str:
    """The address a client on this machine reaches a server bound to ``host`` at."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def _delete_ingress() -> None:
    from ray import serve

    from .channels.http.system import INGRESS_APP

    serve.delete(INGRESS_APP)


def _merged(name: str, inputs: object, kw_inputs: dict[str, Any]) -> dict[str, Any]:
    """A call's inputs: the dict, then the keywords (which win)."""
    if inputs is not None and not isinstance(inputs, Mapping):
        problem = f"must be a dict of inputs, got {type(inputs).__name__}"
        raise InputValidationError([{"field": "inputs", "message": problem, "type": "type_error"}], workflow=name)
    return {**(inputs or {}), **kw_inputs}


def _check_run_id(run_id: object) -> None:
    if not isinstance(run_id, str) or not run_id:
        raise InvalidRequestError(f"run_id must be a run's id (a string), got {run_id!r}.", field="run_id")
    known_run(run_id)


def _run_filters(
    workflow: object, status: str | None, session_id: object, limit: int, cursor: str | None
) -> dict[str, Any]:
    """list_runs()'s filters, checked as GET /runs checks them."""
    for field, value in (("workflow", workflow), ("session_id", session_id)):
        if value is not None and not isinstance(value, str):
            raise InvalidRequestError(f"{field} must be a string, got {value!r}.", field=field)
    return {
        "workflow": workflow,
        "status": run_status(status),
        "session_id": session_id,
        "limit": page_limit(limit),
        "before": page_cursor(cursor, "run"),
    }


def _check_run_options(idempotency_key: object, session_id: object) -> None:
    """The options of execute() and submit(), checked as every channel checks them."""
    if idempotency_key is not None and not valid_idempotency_key(idempotency_key):
        raise InvalidRequestError(
            f"idempotency_key must be {IDEMPOTENCY_KEY_RULE}, got {idempotency_key!r}.", field="idempotency_key"
        )
    if session_id is not None and (not isinstance(session_id, str) or not session_id):
        raise InvalidRequestError(f"session_id must be a session's id, got {session_id!r}.", field="session_id")


def _unshippable(exc: TypeError, workflows: Mapping[str, Workflow]) -> Exception:
    """The WorkflowError for workflows Ray could not send to the hosts, or ``exc`` itself."""
    from .runtime.code_shipping import unshippable

    return unshippable(exc, workflows) or exc
