"""``nexus list``, ``nexus describe``, ``nexus run`` and ``nexus events``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.tree import Tree

from ..errors import InvalidRequestError, RunCancelledError, RunFailedError
from .cli_inputs import collect_inputs
from .cli_options import DEFAULT_URL, Output, Token, Url, server
from .cli_output import OutputFormat, RunProgress, console, print_data, rows_table

if TYPE_CHECKING:
    from .cli_client import ServerClient


def register(cli: typer.Typer) -> None:
    """Add the workflow commands to ``cli``."""
    cli.command("list")(list_workflows)
    cli.command()(describe)
    cli.command()(run)
    cli.command()(events)


def list_workflows(url: Url = DEFAULT_URL, token: Token = None, output: Output = OutputFormat.table) -> None:
    """The server's workflows and their inputs."""
    with server(url, token) as client:
        workflows = client.request("GET", "/workflows")
    print_data(workflows, output, _workflows_table)


def _workflows_table(workflows: list[dict[str, Any]]) -> Table:
    rows = []
    for w in workflows:
        schema = w["input_schema"]
        required = set(schema.get("required", []))
        inputs = ", ".join(f"{k}{'' if k in required else '?'}" for k in schema.get("properties", {}))
        rows.append((w["name"], inputs or "-", w["description"]))
    return rows_table("Workflows", ["name", "inputs (? = optional)", "description"], rows)


def describe(
    name: Annotated[str, typer.Argument(help="Workflow name.")],
    url: Url = DEFAULT_URL,
    token: Token = None,
    output: Output = OutputFormat.table,
) -> None:
    """A workflow's input and output schemas, and its graph as a tree."""
    with server(url, token) as client:
        detail = client.request("GET", f"/workflows/{name}")
    if output != OutputFormat.table:
        print_data(detail, output)
        return
    out = console()
    out.print(f"{detail['name']}: {detail['description'] or '-'}")
    out.print(_inputs_table(detail["input_schema"]))
    out.print(_graph_tree(detail["graph"]))


def _inputs_table(schema: dict[str, Any]) -> Table:
    required = set(schema.get("required", []))
    rows = [
        (k, v.get("type", "any"), "yes" if k in required else "no", v.get("default", ""))
        for k, v in schema.get("properties", {}).items()
    ]
    return rows_table("Inputs", ["input", "type", "required", "default"], rows)


def _graph_tree(graph: dict[str, Any]) -> Tree:
    edges = graph["edges"]
    targets = {e["to"] for e in edges}
    types = {n["id"]: n["type"] for n in graph["nodes"]}
    tree = Tree("graph")

    def grow(branch: Tree, node_id: str, seen: frozenset[str]) -> None:
        for edge in (e for e in edges if e["from"] == node_id):
            label = f"{edge['to']} ({types[edge['to']]}) <- {edge['output']} as {edge['input']}"
            child = branch.add(label)
            if edge["to"] not in seen:
                grow(child, edge["to"], seen | {edge["to"]})

    for node in graph["nodes"]:
        if node["id"] not in targets:
            grow(tree.add(f"{node['id']} ({node['type']})"), node["id"], frozenset({node["id"]}))
    return tree


def run(
    name: Annotated[str, typer.Argument(help="Workflow name.")],
    inputs: Annotated[list[str] | None, typer.Option("--input", "-i", help="KEY=VALUE (JSON where valid).")] = None,
    input_json: Annotated[str | None, typer.Option("--input-json", help="Inputs as a JSON object.")] = None,
    input_file: Annotated[Path | None, typer.Option("--input-file", help="A JSON file of inputs.")] = None,
    session: Annotated[str | None, typer.Option("--session", help="Run in this session.")] = None,
    async_: Annotated[bool, typer.Option("--async", help="Start it and print the run id.")] = False,
    idempotency_key: Annotated[str | None, typer.Option("--idempotency-key", help="Same key: same run.")] = None,
    local: Annotated[
        str | None, typer.Option("--local", metavar="APP", help="Run APP here on an embedded Ray.")
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
    output: Output = OutputFormat.json,
) -> None:
    """Run a workflow, showing each node's progress live; the result when it ends.
    Inputs come from stdin (JSON), --input-file, --input-json and -i (later ones win)."""
    stdin_text = None if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()
    values = collect_inputs(inputs or [], input_json, input_file, stdin_text)
    if local is not None:
        if async_:
            raise InvalidRequestError("--local runs in this process, which ends with the run: drop --async.")
        result = _run_local(local, name, values, session, idempotency_key)
    else:
        with server(url, token) as client:
            result = _run_remote(client, name, values, session, idempotency_key, async_)
    if async_:
        if output == OutputFormat.table:
            typer.echo(result["run_id"])
        else:
            print_data(result, output)
        return
    print_data(result, output, run_table)
    exit_for_status(result)


def _run_remote(
    client: ServerClient, name: str, inputs: dict[str, Any], session: str | None, key: str | None, async_: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {"inputs": inputs, "mode": "async" if async_ else "stream"}
    if session is not None:
        body["session_id"] = session
    headers = {"Idempotency-Key": key} if key else {}
    path = f"/workflows/{name}/execute"
    if async_:
        return client.request("POST", path, json=body, headers=headers)  # type: ignore[no-any-return]
    run_id = show_progress(client.events(path, method="POST", json=body, headers=headers))
    return client.request("GET", f"/runs/{run_id}")  # type: ignore[no-any-return]


def show_progress(events: Iterable[dict[str, Any]]) -> str:
    run_id = ""
    with RunProgress() as progress:
        for event in events:
            run_id = event.get("run_id", run_id)
            progress.update(event)
    if not run_id:
        raise InvalidRequestError("The server sent no events for the run; see `nexus runs` for it.")
    return run_id


def _run_local(
    app_spec: str, name: str, inputs: dict[str, Any], session: str | None, key: str | None
) -> dict[str, Any]:
    import asyncio

    from ..loader import load_app

    app = load_app(app_spec)
    try:  # the runtime only: no HTTP ingress for a local run
        run_id = app.submit(name, inputs, idempotency_key=key, session_id=session)

        async def follow() -> None:
            with RunProgress() as progress:
                async for event in app.events(run_id=run_id):
                    progress.update(event)

        asyncio.run(follow())
        return app.get_run(run_id).to_dict()
    finally:
        app.stop()


def run_table(result: dict[str, Any]) -> Table:
    rows = [(node, n.get("status"), n.get("duration_ms")) for node, n in result.get("nodes", {}).items()]
    table = rows_table(f"run {result['run_id']}: {result['status']}", ["node", "status", "ms"], rows)
    return table


def exit_for_status(result: dict[str, Any]) -> None:
    status = result.get("status")
    if status == "failed":
        error = result.get("error") or {}
        raise RunFailedError(
            f"Run {result['run_id']} failed in node {error.get('node')!r}: {error.get('type')}: {error.get('message')}",
            run_id=result["run_id"],
        )
    if status == "cancelled":
        raise RunCancelledError(f"Run {result['run_id']} was cancelled.", run_id=result["run_id"])


def events(
    run_id: Annotated[str | None, typer.Option("--run", help="A run's events.")] = None,
    session_id: Annotated[str | None, typer.Option("--session", help="A session's events.")] = None,
    after: Annotated[int, typer.Option("--after", min=0, help="Start after this sequence number.")] = 0,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new events.")] = False,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """A run's or a session's events, one JSON object per line."""
    if (run_id is None) == (session_id is None):
        raise InvalidRequestError("Give exactly one of --run ID and --session ID.")
    path = f"/runs/{run_id}/events" if run_id is not None else f"/sessions/{session_id}/events"
    with server(url, token) as client:
        if follow:
            stream: Iterable[dict[str, Any]] = client.events(path, params={"after": after})
        else:
            stream = client.request("GET", path, params={"after": after, "follow": "false"})["events"]
        for event in stream:
            typer.echo(json.dumps(event, default=str))
