"""The installed `nexus` command as a subprocess against the running server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from nexus_ray import Nexus

from .conftest import free_port

NEXUS = str(Path(sys.executable).parent / "nexus")


def nexus(app: Nexus, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([NEXUS, *args, "--url", app.url], input=stdin, capture_output=True, text=True, timeout=60)


def test_run_shows_progress_and_prints_the_result(app: Nexus) -> None:
    done = nexus(app, "run", "double_plus_one", "-i", "x=5")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["outputs"]["add_one"]["result"]["value"] == 11
    progress = done.stderr.splitlines()
    assert progress[0].startswith("run.started ") and "node.completed double (" in done.stderr
    assert progress[-1].startswith("run.completed ")


def test_a_session_made_on_the_cli_is_used_by_a_rest_run(app: Nexus, http: httpx.Client) -> None:
    made = nexus(app, "sessions", "create", "--state", '{"name": "ada"}')
    sid = json.loads(made.stdout)["session_id"]
    r = http.post("/workflows/greet/execute", json={"inputs": {"excited": True}, "session_id": sid})
    assert r.json()["outputs"]["greet"]["result"] == "Hello, ada!"
    shown = nexus(app, "sessions", "show", sid, "-o", "yaml")
    assert shown.returncode == 0 and "name: ada" in shown.stdout


def test_events_follow_receives_an_update_made_over_rest(app: Nexus, http: httpx.Client) -> None:
    sid = http.post("/sessions", json={"state": {"n": 0}}).json()["session_id"]
    follower = subprocess.Popen(
        [NEXUS, "events", "--session", sid, "--after", "1", "--follow", "--url", app.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        http.patch(f"/sessions/{sid}", json={"n": 1})
        assert follower.stdout is not None
        event = json.loads(follower.stdout.readline())
        assert event["type"] == "session.updated" and event["data"]["state"] == {"n": 1}
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def test_every_exit_code(app: Nexus, http: httpx.Client, tmp_path: Path) -> None:
    assert nexus(app, "run", "greet", "-i", "name=a").returncode == 0
    assert nexus(app, "run", "greet", "--no-such-option").returncode == 2
    invalid = nexus(app, "run", "double_plus_one")
    assert invalid.returncode == 3 and "x" in invalid.stderr
    unknown = nexus(app, "run", "double_plus_on", "-i", "x=1")
    assert unknown.returncode == 4 and "double_plus_one" in unknown.stderr
    unreachable = subprocess.run(
        [NEXUS, "list", "--url", f"http://127.0.0.1:{free_port()}"], capture_output=True, text=True, timeout=60
    )
    assert unreachable.returncode == 5 and "Server unreachable" in unreachable.stderr
    key = ["--idempotency-key", f"cli-{tmp_path.name}"]
    assert nexus(app, "run", "greet", "-i", "name=a", *key).returncode == 0
    conflict = nexus(app, "run", "greet", "-i", "name=b", *key)
    assert conflict.returncode == 6 and "different request" in conflict.stderr
    failed = nexus(app, "run", "fails")
    assert failed.returncode == 7 and "failed in node 'explode'" in failed.stderr
    path = str(tmp_path / "log.txt")
    run_id = nexus(app, "run", "three_steps", "-i", f"path={path}", "-i", "seconds=5", "--async", "-o", "table")
    run_id_text = run_id.stdout.strip()
    assert http.post(f"/runs/{run_id_text}/cancel").json()["status"] == "cancelled"
    cancelled = nexus(app, "runs", "watch", run_id_text)
    assert cancelled.returncode == 8 and "cancelled" in cancelled.stderr
    for result in (invalid, unknown, unreachable, conflict, failed, cancelled):
        assert "Traceback" not in result.stderr


def test_run_local_needs_no_server(app: Nexus) -> None:
    from typer.testing import CliRunner

    from nexus_ray.channels.cli import run_cli

    from .conftest import ROOT

    quickstart = str(ROOT / "examples" / "quickstart.py")
    with CliRunner().isolation() as (out, err, *_):
        code = run_cli(["run", "--local", quickstart, "double_plus_one", "-i", "x=4"])
        result, progress = out.getvalue().decode(), err.getvalue().decode()
    assert code == 0, progress
    assert json.loads(result)["outputs"]["add_one"]["result"]["value"] == 9
    assert "node.completed add_one" in progress
    r = httpx.post(f"{app.url}/workflows/double_plus_one/execute", json={"inputs": {"x": 1}}, timeout=30)
    assert r.json()["status"] == "completed"  # the shared app is untouched
