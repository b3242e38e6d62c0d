"""The client commands against the in-process REST app (no Ray): parsing, output
formats, progress, and every exit code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from nexus_ray.channels import cli_resources, cli_workflows
from nexus_ray.channels.cli import run_cli
from nexus_ray.channels.cli_client import ServerClient
from nexus_ray.channels.cli_inputs import collect_inputs, parse_pairs

from .test_http_app import client  # noqa: F401  (the module's in-process server)


@pytest.fixture(autouse=True)
def in_process_server(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    @contextmanager
    def server(url: str, token: str | None) -> Iterator[ServerClient]:
        remote = ServerClient("http://testserver", token)
        remote.http = client
        yield remote

    monkeypatch.setattr(cli_workflows, "server", server)
    monkeypatch.setattr(cli_resources, "server", server)


def nexus(*args: str, stdin: str = "") -> tuple[int, str, str]:
    runner = CliRunner()
    with runner.isolation(input=stdin) as (out, err, *_):
        code = run_cli(list(args))
        return code, out.getvalue().decode(), err.getvalue().decode()


def test_inputs_parse_as_json_where_valid_and_later_sources_win(tmp_path: Path) -> None:
    assert parse_pairs(["x=5", "ok=true", "name=bob", "list=[1, 2]", 's="5"']) == {
        "x": 5,
        "ok": True,
        "name": "bob",
        "list": [1, 2],
        "s": "5",
    }
    (tmp_path / "in.json").write_text('{"a": 1, "b": 1, "c": 1}')
    merged = collect_inputs(["c=3"], '{"b": 2, "c": 2}', tmp_path / "in.json", '{"a": 0, "d": 0}')
    assert merged == {"a": 1, "b": 2, "c": 3, "d": 0}


def test_run_prints_the_result_as_json_and_progress_on_stderr() -> None:
    code, out, err = nexus("run", "double_plus_one", "-i", "x=5")
    assert code == 0
    result = json.loads(out)
    assert result["status"] == "completed" and result["outputs"]["add_one"]["result"]["value"] == 11
    assert "node.completed double" in err and "run.completed" in err


def test_run_reads_stdin_and_formats_yaml() -> None:
    code, out, _ = nexus("run", "greet", "-i", "excited=true", "-o", "yaml", stdin='{"name": "bob"}')
    assert code == 0 and yaml.safe_load(out)["outputs"]["greet"]["result"] == "Hello, bob!"


def test_async_prints_the_run_id_and_runs_show_it() -> None:
    code, out, _ = nexus("run", "greet", "-i", "name=a", "--async", "-o", "table")
    run_id = out.strip()
    assert code == 0 and len(run_id) == 32
    code, out, _ = nexus("runs", "show", run_id)
    assert code == 0 and json.loads(out)["run_id"] == run_id
    code, out, _ = nexus("runs", "--workflow", "greet", "-o", "json")
    assert code == 0 and run_id in [r["run_id"] for r in json.loads(out)]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("run", "double_plus_one"), 3, "Invalid inputs for 'double_plus_one': x"),
        (("run", "double_plus_on", "-i", "x=1"), 4, "double_plus_one"),
        (("run", "fails", "-i", "zero=0"), 7, "failed in node 'explode': ZeroDivisionError"),
        (("run", "greet", "-i", "name"), 3, "must be KEY=VALUE"),
        (("run", "greet", "--input-json", "[1]"), 3, "must be a JSON object"),
        (("runs", "show", "nope"), 4, "No run with id 'nope'"),
        (("sessions", "show", "nope"), 4, "No session with id 'nope'"),
        (("events",), 3, "exactly one of --run ID and --session ID"),
    ],
)
def test_errors_are_one_line_with_a_distinct_exit_code(args: tuple[str, ...], code: int, message: str) -> None:
    got, out, err = nexus(*args)
    assert got == code, err
    errors = [line for line in err.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and message in errors[0] and err.strip().splitlines()[-1] == errors[0]
    assert "Traceback" not in err  # progress lines may come first (failed run)


def test_cancelled_run_exits_8() -> None:
    _, out, _ = nexus("run", "nap", "-i", "seconds=5", "--async", "-o", "table")
    run_id = out.strip()
    code, out, _ = nexus("runs", "cancel", run_id)
    assert code == 0 and json.loads(out)["status"] == "cancelled"
    code, _, err = nexus("runs", "watch", run_id)
    assert code == 8 and "was cancelled" in err


def test_sessions_from_the_cli_and_their_events() -> None:
    code, out, _ = nexus("sessions", "create", "--state", '{"name": "ada"}', "--ttl", "600")
    sid = json.loads(out)["session_id"]
    code, out, _ = nexus("sessions", "set", sid, "visits=1", "lang=en")
    assert code == 0 and json.loads(out)["state"] == {"name": "ada", "visits": 1, "lang": "en"}
    code, out, _ = nexus("run", "greet", "--session", sid)
    assert code == 0 and json.loads(out)["outputs"]["greet"]["result"] == "Hello, ada."
    code, out, _ = nexus("events", "--session", sid)
    types = [json.loads(line)["type"] for line in out.splitlines()]
    assert types == ["session.created", "session.updated", "session.run_completed"]
    code, out, _ = nexus("sessions", "list", "-o", "json")
    assert sid in [s["session_id"] for s in json.loads(out)]
    assert nexus("sessions", "delete", sid)[0] == 0
    assert nexus("sessions", "show", sid)[0] == 4


def test_list_and_describe_tables() -> None:
    code, out, _ = nexus("list")
    assert code == 0 and "double_plus_one" in out and "name, excited?" in out
    code, out, _ = nexus("describe", "double_plus_one")
    assert code == 0 and "double (" in out and "add_one (" in out and "as value" in out
    code, out, _ = nexus("describe", "double_plus_one", "-o", "json")
    assert json.loads(out)["graph"]["nodes"][0]["id"] == "double"


def test_an_unreachable_server_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.undo()  # the real client
    code, _, err = nexus("list", "--url", "http://127.0.0.1:9")
    assert code == 5 and "Server unreachable at http://127.0.0.1:9" in err and "nexus serve" in err


@pytest.mark.parametrize("status", [401, 403])
def test_auth_refusals_exit_9(status: int) -> None:
    import httpx

    from nexus_ray.channels.cli_client import error_from_response
    from nexus_ray.errors import exit_code

    response = httpx.Response(status, json={"title": "Unauthorized", "status": status, "detail": "Send a token."})
    error = error_from_response(response)
    assert exit_code(error) == 9 and error.message == "Send a token."
