"""``nexus runs ...`` and ``nexus sessions ...``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table

from .cli_inputs import json_object, parse_pairs
from .cli_options import DEFAULT_URL, Output, Token, Url, server
from .cli_output import OutputFormat, print_data, rows_table
from .cli_workflows import exit_for_status, run_table, show_progress


class RunStatus(StrEnum):
    """``--status`` (the run statuses; kept here so the CLI does not load the workflow model)."""

    pending = "pending"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


runs = typer.Typer(help="Runs: list, show, cancel, watch.", no_args_is_help=False)
sessions = typer.Typer(help="Sessions: create, show, set, delete, list.", no_args_is_help=True)

RunId = Annotated[str, typer.Argument(help="Run id.")]
SessionId = Annotated[str, typer.Argument(help="Session id.")]


@runs.callback(invoke_without_command=True)
def list_runs(
    ctx: typer.Context,
    workflow: Annotated[str | None, typer.Option(help="Only this workflow's runs.")] = None,
    status: Annotated[RunStatus | None, typer.Option(help="Only runs with this status.")] = None,
    session: Annotated[str | None, typer.Option(help="Only this session's runs.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="At most this many.")] = 20,
    url: Url = DEFAULT_URL,
    token: Token = None,
    output: Output = OutputFormat.table,
) -> None:
    """Runs, newest first (with no subcommand)."""
    if ctx.invoked_subcommand is not None:
        return
    params = {"workflow": workflow, "status": status.value if status else None, "session_id": session, "limit": limit}
    with server(url, token) as client:
        page = client.request("GET", "/runs", params={k: v for k, v in params.items() if v is not None})
    print_data(page["runs"], output, _runs_table)


def _runs_table(items: list[dict[str, Any]]) -> Table:
    rows = [(r["run_id"], r["workflow"], r["status"], r.get("duration_ms"), r.get("session_id")) for r in items]
    return rows_table("Runs", ["run id", "workflow", "status", "ms", "session"], rows)


@runs.command("show")
def show_run(run_id: RunId, url: Url = DEFAULT_URL, token: Token = None, output: Output = OutputFormat.json) -> None:
    """A run: status, per-node status and timings, outputs or error."""
    with server(url, token) as client:
        print_data(client.request("GET", f"/runs/{run_id}"), output, run_table)


@runs.command("cancel")
def cancel_run(run_id: RunId, url: Url = DEFAULT_URL, token: Token = None, output: Output = OutputFormat.json) -> None:
    """Cancel a run at once."""
    with server(url, token) as client:
        print_data(client.request("POST", f"/runs/{run_id}/cancel"), output, run_table)


@runs.command("watch")
def watch_run(run_id: RunId, url: Url = DEFAULT_URL, token: Token = None, output: Output = OutputFormat.json) -> None:
    """Follow a run's progress until it ends; exit code by its final status."""
    with server(url, token) as client:
        show_progress(client.events(f"/runs/{run_id}/events"))
        result = client.request("GET", f"/runs/{run_id}")
    print_data(result, output, run_table)
    exit_for_status(result)


@sessions.command("create")
def create_session(
    ttl: Annotated[float | None, typer.Option("--ttl", min=0.001, help="Expire after S idle seconds.")] = None,
    state: Annotated[str | None, typer.Option("--state", help="Initial state as a JSON object.")] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
    output: Output = OutputFormat.json,
) -> None:
    """A new session (prints it; its id is ``session_id``)."""
    body: dict[str, Any] = {"state": json_object(state, "--state") if state else {}}
    if ttl is not None:
        body["ttl_s"] = ttl
    with server(url, token) as client:
        print_data(client.request("POST", "/sessions", json=body), output, _session_table)


@sessions.command("show")
def show_session(
    session_id: SessionId, url: Url = DEFAULT_URL, token: Token = None, output: Output = OutputFormat.json
) -> None:
    """A session's state and version."""
    with server(url, token) as client:
        print_data(client.request("GET", f"/sessions/{session_id}"), output, _session_table)


@sessions.command("set")
def set_session(
    session_id: SessionId,
    pairs: Annotated[list[str], typer.Argument(metavar="KEY=VALUE...", help="Values parse as JSON where valid.")],
    url: Url = DEFAULT_URL,
    token: Token = None,
    output: Output = OutputFormat.json,
) -> None:
    """Set keys of a session's state (a JSON merge patch; VALUE null removes KEY)."""
    patch = parse_pairs(pairs, "KEY=VALUE")
    with server(url, token) as client:
        print_data(client.request("PATCH", f"/sessions/{session_id}", json=patch), output, _session_table)


@sessions.command("delete")
def delete_session(session_id: SessionId, url: Url = DEFAULT_URL, token: Token = None) -> None:
    """Delete a session."""
    with server(url, token) as client:
        client.request("DELETE", f"/sessions/{session_id}")
    typer.echo(f"deleted {session_id}")


@sessions.command("list")
def list_sessions(
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    url: Url = DEFAULT_URL,
    token: Token = None,
    output: Output = OutputFormat.table,
) -> None:
    """Live sessions, newest first."""
    with server(url, token) as client:
        page = client.request("GET", "/sessions", params={"limit": limit})
    print_data(page["sessions"], output, _sessions_table)


def _session_table(session: dict[str, Any]) -> Table:
    return _sessions_table([session])


def _sessions_table(items: list[dict[str, Any]]) -> Table:
    import json

    rows = [(s["session_id"], s["version"], json.dumps(s["state"])[:80], s.get("expires_at")) for s in items]
    return rows_table("Sessions", ["session id", "version", "state", "expires at"], rows)
