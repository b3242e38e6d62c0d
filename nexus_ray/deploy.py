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

from typing import Any

import yaml

from .app import Nexus, client_host
from .errors import ConfigurationError
from .loader import load_app
from .settings import Settings, load_settings

DEFAULT_DEPLOYMENT = "nexus"
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
        app.settings = load_settings(app.settings, **overrides)
    return app.ingress_application(args.get("deployment") or DEFAULT_DEPLOYMENT)


def deploy_to(app: Nexus, address: str, deployment: str = DEFAULT_DEPLOYMENT, spec: str | None = None) -> str:
    """Deploy ``app`` to the cluster at ``address`` and disconnect; the ingress URL as the
    cluster's Serve proxy serves it. A ``ray://`` address needs ``spec`` (see
    :func:`_deploy_through_client`)."""
    if address.startswith("ray://"):
        if spec is None:
            raise ConfigurationError(
                "Deploying through Ray Client (ray://) needs the app spec, to load it in the cluster."
            )
        return _deploy_through_client(spec, address, deployment)
    app.settings = load_settings(app.settings, ray_address=address)
    try:
        return deploy_here(app, deployment)
    finally:
        app.detach()


def deploy_here(app: Nexus, deployment: str = DEFAULT_DEPLOYMENT) -> str:
    """Deploy ``app`` on the Ray this process has joined (or starts); the ingress URL."""
    from .channels.http.ingress import deploy_ingress

    deploy_ingress(app.ingress_application(deployment), app.settings)
    return _proxy_url(app.settings)


def _proxy_url(settings: Settings) -> str:
    """Where the cluster's Serve proxy listens: Serve keeps the HTTP options it started
    with, whatever this deployment's settings say."""
    from ray.serve.context import _get_global_client

    host, port = settings.host, settings.port
    client = _get_global_client()  # private API, hence the fallback to the settings
    options = getattr(client, "http_config", None)
    if options is not None:
        host, port = options.host, options.port
    return f"http://{client_host(host)}:{port}"


# Left out of the working_dir uploaded to a cluster through Ray Client.
UPLOAD_EXCLUDES = [".venv", ".git", "benchmarks/.venvs", ".nexus", "**/__pycache__", ".mypy_cache", ".ruff_cache"]


def _deploy_through_client(spec: str, address: str, deployment: str) -> str:
    """Ray Client hands out proxies of actor handles, which a Serve replica cannot use: the
    deployment runs as a task inside the cluster instead, with this directory uploaded as
    its working_dir (so ``spec`` resolves there) and the cluster's environment."""
    import ray

    ray.init(address=address, runtime_env={"working_dir": ".", "excludes": UPLOAD_EXCLUDES}, log_to_driver=False)
    try:
        task = ray.remote(num_cpus=0, max_retries=0)(_deploy_in_cluster)
        return ray.get(task.remote(spec, deployment))  # type: ignore[no-any-return]
    finally:
        ray.shutdown()


def _deploy_in_cluster(spec: str, deployment: str) -> str:
    return deploy_here(load_app(spec), deployment)


def serve_config(app: Nexus, spec: str, deployment: str = DEFAULT_DEPLOYMENT) -> dict[str, Any]:
    """The Serve config file for ``app`` (loaded from ``spec``), from its settings."""
    from .channels.http.ingress import QUIET_LOGS, ingress_options
    from .channels.http.system import INGRESS_APP, INGRESS_DEPLOYMENT

    settings = app.settings
    ingress = {"name": INGRESS_DEPLOYMENT, **ingress_options(settings)}
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": settings.host, "port": settings.port},
        "logging_config": dict(QUIET_LOGS),
        "applications": [
            {
                "name": INGRESS_APP,
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
