"""Nodes that declare Ray resources run as Ray tasks, concurrently, outside the host."""

from __future__ import annotations

import httpx

from nexus_ray import Nexus


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
