"""Deploy an app to a running Ray cluster, where it outlives the process that deployed it.

Two ways, one result (the Serve application ``nexus`` plus the app's detached actors,
named ``nexus-<deployment>-...``):

- a Serve config file: ``nexus deploy APP --config-only`` writes ``deployments/nexus.yaml``,
  whose ``import_path`` is :func:`build_app`; ``serve deploy deployments/nexus.yaml``
  brings it up on a cluster started with ``ray start --head`` (from the project directory,
  so the app's path resolves) and ``serve status`` follows it;
- directly: ``nexus deploy APP --address auto|HOST:PORT|ray://HOST:10001``.

Deploying again under the same name replaces the app's actors; runs they left unfinished
resume on the new hosts from the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .app import Nexus
from .errors import ConfigurationError
from .loader import load_app
from .settings import Settings

DEFAULT_DEPLOYMENT = "nexus"
DEFAULT_CONFIG_PATH = Path("deployments/nexus.yaml")
BUILDER = "nexus_ray.deploy:build_app"
_ARGS = {"app", "deployment", "settings"}


def build_app(args: dict[str, Any]) -> Any:
    """Serve's application builder (``import_path: nexus_ray.deploy:build_app``).

    Args (the ``args`` of the config file):
        app: The app spec (``PATH.py``, ``PATH.py:NAME`` or ``module:attr``), relative to
            the working directory of the cluster's processes.
        deployment: Name of the deployment (default ``nexus``).
        settings: Settings that override the app's own and the environment's.
    """
    unknown = set(args) - _ARGS
    if unknown or not isinstance(args.get("app"), str):
        raise ConfigurationError(
            f"The nexus_ray application args need 'app' (an app spec) and may have {sorted(_ARGS - {'app'})}; "
            f"got {sorted(args)}.",
            args=sorted(args),
        )
    app = load_app(args["app"])
    overrides = args.get("settings") or {}
    if overrides:
        app.settings = _settings(app.settings, overrides)
    return prepare(app, args.get("deployment") or DEFAULT_DEPLOYMENT)


def prepare(app: Nexus, deployment: str = DEFAULT_DEPLOYMENT) -> Any:
    """Start ``app``'s runtime on the Ray this process is connected to, with detached
    actors named after ``deployment``, and return its ingress as a Serve application."""
    app._deployment = deployment
    app._ensure_runtime()
    return app.ingress_application()


def deploy_to(app: Nexus, address: str, deployment: str = DEFAULT_DEPLOYMENT) -> str:
    """Deploy ``app`` to the cluster at ``address`` and disconnect; the ingress URL as the
    cluster's Serve proxy serves it."""
    from .channels.http.ingress import deploy_ingress

    app.settings = _settings(app.settings, {"ray_address": address})
    try:
        deploy_ingress(prepare(app, deployment), app.settings)
    finally:
        runtime, app._runtime, app._pool = app._runtime, None, None
        if runtime is not None:
            runtime.stop()  # joined by address: this only disconnects
    return f"http://{app.settings.host}:{app.settings.port}"


def serve_config(app: Nexus, spec: str, deployment: str = DEFAULT_DEPLOYMENT) -> dict[str, Any]:
    """The Serve config file for ``app`` (loaded from ``spec``), from its settings."""
    from .channels.http.ingress import QUIET_LOGS

    settings = app.settings
    ingress: dict[str, Any] = {"name": "NexusIngress", "max_ongoing_requests": settings.ingress_max_ongoing_requests}
    if settings.scaling.autoscales_ingress:
        ingress["autoscaling_config"] = settings.scaling.serve_autoscaling_config()
    else:
        ingress["num_replicas"] = settings.ingress_replicas
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": settings.host, "port": settings.port},
        "logging_config": dict(QUIET_LOGS),
        "applications": [
            {
                "name": "nexus",
                "route_prefix": "/",
                "import_path": BUILDER,
                "args": {"app": spec, "deployment": deployment},
                "deployments": [ingress],
            }
        ],
    }


def render_serve_config(app: Nexus, spec: str, deployment: str = DEFAULT_DEPLOYMENT) -> str:
    """:func:`serve_config` as YAML, with a header saying where it comes from."""
    header = (
        f"# Serve config of {spec}, written by `nexus deploy {spec} --config-only`: regenerate it, do not edit.\n"
        "# Bring it up on a running cluster: `ray start --head` (from the project directory), then\n"
        "# `serve deploy deployments/nexus.yaml`. Settings come from the cluster's environment\n"
        "# (NEXUS_STORE_URL, NEXUS_ENV, ...); http_options follow NEXUS_HOST / NEXUS_PORT here.\n"
    )
    return header + yaml.safe_dump(serve_config(app, spec, deployment), sort_keys=False)


def _settings(current: Settings, overrides: dict[str, Any]) -> Settings:
    try:
        return Settings(**{**current.model_dump(exclude_unset=True), **overrides})
    except ValidationError as exc:
        raise ConfigurationError(f"Invalid settings for the deployment: {exc}", overrides=sorted(overrides)) from exc
