"""The Ray Serve ingress deployment that hosts the HTTP channel, and its deploy/ready steps."""

from __future__ import annotations

import time
from typing import Any

import httpx
from fastapi import FastAPI
from ray import serve
from ray.actor import ActorHandle
from ray.serve import Application

from ...errors import RuntimeUnavailableError
from ...registry import RegisteredWorkflow
from ...runtime.gc_tuning import tune_gc
from ...runtime.pool import PoolClient
from ...runtime.security_host import SecurityClient
from ...runtime.sessions_client import SessionsClient
from ...security.guard import Guard
from ...settings import Settings
from .app import build_http_app, catalog_digest
from .system import INGRESS_APP, INGRESS_DEPLOYMENT

QUIET_LOGS = {"enable_access_log": False, "log_level": "WARNING"}


@serve.deployment(name=INGRESS_DEPLOYMENT, ray_actor_options={"num_cpus": 0}, graceful_shutdown_timeout_s=2)
@serve.ingress()
class NexusIngress:
    """One replica of the HTTP ingress. Workflows and the pool client arrive pickled; the
    FastAPI app is built inside the replica, so nothing of FastAPI crosses processes."""

    def __init__(
        self,
        catalog: dict[str, RegisteredWorkflow],
        pool: PoolClient,
        sessions: SessionsClient,
        settings: dict[str, Any],
        workflow_catalog: ActorHandle,
        security: SecurityClient,
    ) -> None:
        self.catalog = catalog
        self.pool = pool
        self.sessions = sessions
        self.settings = Settings(**settings)
        self.workflow_catalog = workflow_catalog
        self.security = security

    def __serve_build_asgi_app__(self) -> FastAPI:
        async def changes(version: int, timeout_s: float) -> tuple[int, dict[str, RegisteredWorkflow]]:
            return await self.workflow_catalog.wait_change.remote(version, timeout_s)  # type: ignore[no-any-return]

        guard = Guard(self.settings, self.security)
        app = build_http_app(self.catalog, self.pool, self.sessions, self.settings, changes, guard)
        tune_gc()
        return app


def ingress_application(
    catalog: dict[str, RegisteredWorkflow],
    pool: PoolClient,
    sessions: SessionsClient,
    settings: Settings,
    workflow_catalog: ActorHandle,
    security: SecurityClient,
) -> Application:
    """The ingress deployment, bound, with :func:`ingress_options`."""
    return NexusIngress.options(**ingress_options(settings)).bind(  # type: ignore[attr-defined,no-any-return]
        catalog, pool, sessions, settings.portable(), workflow_catalog, security
    )


def ingress_options(settings: Settings) -> dict[str, Any]:
    """The ingress deployment's Serve options: fixed replicas, or Serve autoscaling by the
    policy (also written to the Serve config file, see nexus_ray.deploy)."""
    options: dict[str, Any] = {"max_ongoing_requests": settings.ingress_max_ongoing_requests}
    if settings.scaling.autoscales_ingress:
        options["autoscaling_config"] = settings.scaling.serve_autoscaling_config()
    else:
        options["num_replicas"] = settings.ingress_replicas
    return options


def deploy_ingress(app: Application, settings: Settings) -> None:
    """Start Serve's HTTP proxy on the configured host/port and (re)deploy the ingress."""
    serve.start(http_options={"host": settings.host, "port": settings.port}, logging_config=QUIET_LOGS)
    # Replicas take their logging config from the application, not from serve.start:
    # without it every request writes an INFO access-log line.
    serve.run(app, name=INGRESS_APP, route_prefix="/", logging_config=QUIET_LOGS)


def wait_until_ready(url: str, workflows: set[str], timeout_s: float) -> float:
    """Poll ``url``/health until it answers 2xx for exactly ``workflows`` (the proxy may
    answer 503, or an old replica, for a while after serve.run returns). /health is open
    with auth on too; it shows a digest of the workflow names."""
    started = time.monotonic()
    last = "no answer"
    wanted = catalog_digest(workflows)
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() - started < timeout_s:
            try:
                response = client.get(f"{url}/health")
                if response.is_success and response.json().get("catalog") == wanted:
                    return time.monotonic() - started
                last = f"HTTP {response.status_code}"
            except (httpx.HTTPError, ValueError) as exc:
                last = type(exc).__name__
            time.sleep(0.05)
    raise RuntimeUnavailableError(
        f"The HTTP ingress at {url} did not answer 2xx within {timeout_s:.0f} s (last: {last}). "
        "Check that the port is free and the Ray logs.",
        url=url,
    )
