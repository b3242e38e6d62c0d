"""Nodes that declare Ray resources run as Ray tasks, concurrently, outside the host."""

from __future__ import annotations

import time

import httpx

from nexus_ray import Nexus


def test_resource_nodes_run_as_concurrent_ray_tasks(app: Nexus, http: httpx.Client) -> None:
    started = time.perf_counter()
    body = http.post("/workflows/placed/execute", json={"inputs": {"seconds": 1.0}}).json()
    elapsed = time.perf_counter() - started
    assert body["status"] == "completed", body
    pids = {body["outputs"]["a"]["result"], body["outputs"]["b"]["result"]}
    host_pids = {h["pid"] for h in app._pool.info()}
    assert len(pids) == 2 and not pids & host_pids
    assert elapsed < 1.9, f"two 1 s nodes on 2 CPUs took {elapsed:.2f} s"


def test_error_inside_a_ray_task_names_node_and_type(http: httpx.Client) -> None:
    body = http.post("/workflows/remote_failure/execute", json={"inputs": {"reason": "no luck"}}).json()
    assert body["status"] == "failed"
    assert body["error"]["node"] == "boom" and body["error"]["type"] == "ValueError"
    assert "no luck" in body["error"]["message"]
