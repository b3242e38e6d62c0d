"""The ``nexus`` command line. Heavy modules (Ray, Serve, the app) load only when needed,
so ``nexus --help`` stays instant."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from ..errors import NexusError, exit_code

DEFAULT_CONFIG_PATH = Path("deployments/nexus.yaml")  # what `nexus deploy --config-only` writes

cli = typer.Typer(
    name="nexus",
    help="nexus_ray: serve registered workflows on REST, run them on Ray.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@cli.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _State.debug = debug


class _State:
    debug = False


def _add_client_commands() -> None:
    # Imported here, not at the top, only to keep this module's imports in one place; they
    # pull in httpx and rich, never Ray.
    from .cli_resources import runs, sessions
    from .cli_security import audit, keys
    from .cli_workflows import register

    register(cli)
    cli.add_typer(runs, name="runs")
    cli.add_typer(sessions, name="sessions")
    cli.add_typer(keys, name="keys")
    cli.command("audit")(audit)


_add_client_commands()


@cli.command()
def serve(
    app_spec: Annotated[str, typer.Argument(metavar="APP", help="PATH.py, PATH.py:NAME or module:attr")],
    host: Annotated[
        str | None, typer.Option(help="Interface to bind [default: the app's, else NEXUS_HOST, else 127.0.0.1].")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="HTTP port [default: the app's, else NEXUS_PORT, else 8000].")
    ] = None,
) -> None:
    """Start the app on Ray (embedded local Ray unless RAY_ADDRESS is set) and serve it
    until Ctrl-C or SIGTERM, which stop everything this command started."""
    from ..loader import load_app
    from ..settings import load_settings

    app = load_app(app_spec)
    given = {name: value for name, value in (("host", host), ("port", port)) if value is not None}
    app.settings = load_settings(app.settings, **given)  # a flag wins; else the app's, NEXUS_*, default
    stop = threading.Event()
    _on_signals(stop)
    try:
        info = app.start()
        _print_banner(info, list(app.workflows))
        while not stop.wait(0.5):
            pass
    finally:
        typer.echo("Stopping...", err=True)
        app.stop()
        typer.echo("Stopped.", err=True)


@cli.command()
def deploy(
    app_spec: Annotated[str, typer.Argument(metavar="APP", help="PATH.py, PATH.py:NAME or module:attr")],
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            envvar="RAY_ADDRESS",
            help="The cluster: auto (the one on this machine), HOST:PORT or ray://HOST:10001.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Deployment name (its actors: nexus-NAME-...).")] = "nexus",
    config_only: Annotated[
        bool, typer.Option("--config-only", help="Only write the Serve config file (for `serve deploy`).")
    ] = False,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where --config-only writes the config.")
    ] = DEFAULT_CONFIG_PATH,
) -> None:
    """Deploy the app to a running Ray cluster, where it keeps serving after this command
    ends; or, with --config-only, write its Serve config file for `serve deploy`."""
    from ..deploy import deploy_to, render_serve_config
    from ..errors import InvalidRequestError
    from ..loader import load_app

    app = load_app(app_spec)
    if config_only:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(render_serve_config(app, app_spec, name))
        typer.echo(f"Wrote {output}; bring it up with: serve deploy {output}")
        return
    if not address:
        raise InvalidRequestError("Give the cluster with --address auto|HOST:PORT|ray://HOST:10001 (or RAY_ADDRESS).")
    url = deploy_to(app, address, name, app_spec)
    typer.echo(f"Deployed {app_spec} as '{name}' ({len(app.workflows)} workflows); the cluster serves it at {url}")


@cli.command()
def mcp(
    url: Annotated[
        str | None, typer.Option("--url", envvar="NEXUS_URL", help="Bridge to the server at URL.", show_default=False)
    ] = None,
    app_spec: Annotated[
        str | None, typer.Option("--app", metavar="APP", help="Run APP here (embedded Ray) and serve it.")
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="NEXUS_TOKEN",
            help="JWT or API key: sent to --url, or the identity of every call with --app (auth on).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve MCP over stdio for desktop agents: bridge to a running server (--url) or run
    an app locally (--app). stdout carries the protocol; logs go to stderr."""
    import asyncio

    from ..errors import InvalidRequestError

    if (url is None) == (app_spec is None):
        raise InvalidRequestError("Give exactly one of --url URL (a running server) and --app APP (run it here).")
    from .mcp.stdio import bridge_server, serve_stdio

    if url is not None:
        asyncio.run(serve_stdio(bridge_server(url, token)))
        return
    from ..loader import load_app
    from .mcp.stdio import serve_app_stdio

    app = load_app(app_spec)  # type: ignore[arg-type]
    try:
        asyncio.run(serve_app_stdio(app, token))
    finally:
        app.stop()


def _on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _print_banner(info: object, workflows: list[str]) -> None:
    from ..app import ServerInfo

    assert isinstance(info, ServerInfo)
    lines = [
        f"nexus_ray serving {len(workflows)} workflow(s): {', '.join(workflows) or '-'}",
        f"  ingress:   {info.ingress} on {info.ray}",
        f"  REST docs: {info.docs_url}",
        f"  workflows: {info.workflows_url}",
        f"  health:    {info.health_url}",
        *([f"  host logs: {info.logs_dir} (worker-*.err)"] if info.logs_dir else []),
        "Press Ctrl-C to stop.",
    ]
    typer.echo("\n".join(lines))


def main() -> None:
    """Console-script entry point."""
    sys.exit(run_cli(sys.argv[1:]))


def run_cli(args: list[str]) -> int:
    """Run the CLI on ``args``; the exit code. A NexusError prints one line (a traceback
    only with --debug) and exits with its code (see README, "CLI")."""
    try:
        cli(args, standalone_mode=False)
    except NexusError as exc:
        if _State.debug:
            raise
        typer.echo(f"Error: {exc.message}", err=True)
        return exit_code(exc)
    except KeyboardInterrupt:
        return 130
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        return 130
    except typer.exceptions.TyperException as exc:  # usage errors (Typer's own click)
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        return int(getattr(exc, "exit_code", 2))
    return 0
