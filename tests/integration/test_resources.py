"""Nodes that declare Ray resources run as Ray tasks, concurrently, outside the host."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx

from nexus_ray import Nexus, WorkflowBuilder

from .test_streams import read_sse


def test_resource_nodes_run_as_concurrent_ray_tasks(app: Nexus, http: httpx.Client) -> None:
    body = http.post("/workflows/placed/execute", json={"inputs": {"seconds": 2.0}}).json()
    assert body["status"] == "completed", body
    a, b = body["outputs"]["a"]["result"], body["outputs"]["b"]["result"]
    host_pids = {h["pid"] for h in app._pool.info()}
    assert a["pid"] != b["pid"] and not {a["pid"], b["pid"]} & host_pids  # two Ray workers, not the host
    assert a["start"] < b["end"] and b["start"] < a["end"], "the two nodes did not run at the same time"


def test_error_inside_a_ray_task_names_node_and_type(http: httpx.Client) -> None:
    body = http.post("/workflows/remote_failure/execute", json={"inputs": {"reason": "no luck"}}).json()
    assert body["status"] == "failed"
    assert body["error"]["node"] == "boom" and body["error"]["type"] == "ValueError"
    assert "no luck" in body["error"]["message"]


def test_a_node_no_cluster_node_can_hold_fails_after_the_wait_instead_of_hanging(http: httpx.Client) -> None:
    started = time.monotonic()
    body = http.post("/workflows/nowhere/execute", json={"inputs": {"reason": "unused"}}).json()
    took = time.monotonic() - started
    assert body["status"] == "failed", body
    assert body["error"]["node"] == "train" and body["error"]["type"] == "ResourcesUnavailableError"
    assert "asks for {'CPU': 1.0, 'nexus_absent': 1.0}" in body["error"]["message"]
    assert "within 1 s (NEXUS_RESOURCE_WAIT_S)" in body["error"]["message"]
    assert 1.0 <= took < 10, took  # NEXUS_RESOURCE_WAIT_S=1 in the test app
    events = read_sse(http.get(f"/runs/{body['run_id']}/events").text.splitlines())
    types = [e["type"] for e in events]
    assert types.index("node.started") < types.index("node.waiting") < types.index("node.failed")
    waiting = events[types.index("node.waiting")]["data"]
    assert waiting == {"node": "train", "resources": {"CPU": 1.0, "nexus_absent": 1.0}, "wait_s": 1.0}


def exits_in_a_task(marks: str) -> int:
    Path(marks, uuid.uuid4().hex).touch()  # one mark per execution
    raise SystemExit(7)


def test_a_ray_task_node_that_calls_sys_exit_fails_once_with_its_own_error(
    app: Nexus, http: httpx.Client, tmp_path: Path
) -> None:
    """Before, the worker exited with it, Ray ran the task 3 times more (4 worker
    processes), and the node failed with WorkerCrashedError."""
    app.register("exits_remotely", WorkflowBuilder().add_node(exits_in_a_task, "n", resources={"num_cpus": 0.5}))
    try:
        body = http.post("/workflows/exits_remotely/execute", json={"inputs": {"marks": str(tmp_path)}}).json()
    finally:
        app.unregister("exits_remotely")
    assert body["status"] == "failed" and body["error"]["type"] == "ExitCalledError", body
    assert body["error"]["message"] == "node 'n' called sys.exit(7); it fails, and its host goes on"
    assert len(list(tmp_path.iterdir())) == 1
