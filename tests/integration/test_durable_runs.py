"""Durable runs on the real runtime: async mode, status, listing, cancellation, and
recovery after a RunHost process is SIGKILLed mid-run."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from nexus_ray import ConflictError, Nexus, NotFoundError, RunStatus

from .polling import wait_for


def test_async_mode_status_and_listing(http: httpx.Client) -> None:
    r = http.post("/workflows/double_plus_one/execute", json={"inputs": {"x": 7}, "mode": "async"})
    assert r.status_code == 202 and r.headers["location"] == f"/runs/{r.json()['run_id']}"
    body = wait_for(http, r.json()["run_id"], lambda b: b["status"] == "completed")
    assert body["outputs"]["add_one"]["result"]["value"] == 15
    assert {n["status"] for n in body["nodes"].values()} == {"completed"}
    listed = http.get("/runs", params={"workflow": "double_plus_one", "limit": 5}).json()["runs"]
    assert listed[0]["run_id"] == r.json()["run_id"]
    assert http.get("/runs/unknown-id").status_code == 404


def test_cancel_over_rest_and_python(app: Nexus, http: httpx.Client, tmp_path: Path) -> None:
    log = tmp_path / "steps.log"
    inputs = {"path": str(log), "slow": {"seconds": 30}}
    run_id = http.post("/workflows/three_steps/execute", json={"inputs": inputs, "mode": "async"}).json()["run_id"]
    wait_for(http, run_id, lambda b: b["nodes"].get("slow", {}).get("status") == "running")
    r = http.post(f"/runs/{run_id}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert r.json()["nodes"]["slow"]["status"] in ("running", "cancelled")  # in flight when cancelled
    assert http.post(f"/runs/{run_id}/cancel").status_code == 409
    time.sleep(0.5)
    assert log.read_text().split() == ["first", "slow"]  # 'last' never ran

    py_run = app.submit("three_steps", path=str(log), slow={"seconds": 30})
    deadline = time.monotonic() + 30
    while app.get_run(py_run).nodes.get("slow") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert app.cancel(py_run).status == RunStatus.CANCELLED
    with pytest.raises(ConflictError):
        app.cancel(py_run)
    with pytest.raises(NotFoundError):
        app.get_run("no-such-run")


def test_runhost_sigkill_mid_run_completes_each_node_once(app: Nexus, http: httpx.Client, tmp_path: Path) -> None:
    log = tmp_path / "steps.log"
    inputs = {"path": str(log), "slow": {"seconds": 3}}
    run_id = http.post("/workflows/three_steps/execute", json={"inputs": inputs, "mode": "async"}).json()["run_id"]
    wait_for(http, run_id, lambda b: b["nodes"].get("slow", {}).get("status") == "running")
    sync_log = tmp_path / "sync.log"
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        # A synchronous request in flight when the host dies still gets its answer.
        sync_call = pool.submit(
            http.post,
            "/workflows/three_steps/execute",
            json={"inputs": {"path": str(sync_log), "slow": {"seconds": 2}}},
            timeout=90,
        )
        time.sleep(0.5)
        (host,) = app._pool.info()
        os.kill(host["pid"], signal.SIGKILL)
        body = wait_for(http, run_id, lambda b: b["status"] in ("completed", "failed"), timeout=90)
        sync_response = sync_call.result(timeout=90)
    assert body["status"] == "completed", body
    assert body["outputs"]["last"]["result"] == "abc"
    steps = log.read_text().split()
    assert steps.count("first") == 1 and steps.count("last") == 1  # completed nodes never ran again
    assert steps.count("slow") == 2  # the node in flight ran again
    (new_host,) = app._pool.info()
    assert new_host["pid"] != host["pid"]
    assert sync_response.status_code == 200, sync_response.text
    assert sync_response.json()["status"] == "completed"
    assert sync_response.json()["outputs"]["last"]["result"] == "abc"


def test_a_node_that_kills_its_host_fails_its_run_after_crash_retries(
    app: Nexus, http: httpx.Client, tmp_path: Path
) -> None:
    """Resumed after each host death, a poison node would take down host after host for
    ever; with crash_retries=1 it runs twice (three times when it killed its first host
    before its start was stored), then the run fails naming it."""
    log = tmp_path / "steps.log"
    (host,) = app._pool.info()
    r = http.post("/workflows/poison/execute", json={"inputs": {"path": str(log)}, "mode": "async"})
    body = wait_for(http, r.json()["run_id"], lambda b: b["status"] in ("completed", "failed"), timeout=120)
    assert body["status"] == "failed" and body["error"]["type"] == "NodeCrashedError", body
    assert (
        body["error"]["node"] == "kill"
        and "died or stopped renewing its lease 2 times (NEXUS_CRASH_RETRIES=1)" in body["error"]["message"]
    )
    assert body["nodes"]["kill"]["status"] == "failed"
    assert log.read_text().split() in (["kill_host"] * 2, ["kill_host"] * 3)
    (new_host,) = app._pool.info()
    assert new_host["pid"] != host["pid"]
    assert http.post("/workflows/double_plus_one/execute", json={"inputs": {"x": 1}}).json()["status"] == "completed"


def test_two_hundred_concurrent_runs(http: httpx.Client) -> None:
    def one(x: int) -> int:
        r = http.post("/workflows/double_plus_one/execute", json={"inputs": {"x": x}})
        return int(r.json()["outputs"]["add_one"]["result"]["value"])

    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        assert list(pool.map(one, range(200))) == [2 * x + 1 for x in range(200)]


def test_idempotency_over_rest_and_python(app: Nexus, http: httpx.Client, tmp_path: Path) -> None:
    log = tmp_path / "steps.log"
    body = {"inputs": {"path": str(log), "slow": {"seconds": 1}}}
    key = {"Idempotency-Key": f"k-{time.time_ns()}"}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:  # the second arrives while the first runs
        first, second = pool.map(lambda _: http.post("/workflows/three_steps/execute", json=body, headers=key), [0, 1])
    assert first.status_code == second.status_code == 200
    assert first.json()["run_id"] == second.json()["run_id"]
    assert log.read_text().split() == ["first", "slow", "last"]  # executed once
    other = {"inputs": {"path": str(log), "slow": {"seconds": 2}}}
    conflict = http.post("/workflows/three_steps/execute", json=other, headers=key)
    assert conflict.status_code == 409 and conflict.json()["run_id"] == first.json()["run_id"]

    py_key = f"py-{time.time_ns()}"
    a = app.execute("double_plus_one", x=1, idempotency_key=py_key)
    b = app.execute("double_plus_one", {"x": 1}, idempotency_key=py_key)
    assert a.run_id == b.run_id and b.outputs["add_one"]["result"]["value"] == 3
    with pytest.raises(ConflictError):
        app.execute("double_plus_one", x=2, idempotency_key=py_key)
    assert app.submit("double_plus_one", x=1, idempotency_key=py_key) == a.run_id


def test_a_run_host_hands_the_gil_over_every_half_millisecond(app: Nexus) -> None:
    # At CPython's 5 ms, busy node threads starved the host's loop until its leases lapsed
    # (benchmarks/bench_cpu_nodes.py); a node runs in its host's process and sees its setting.
    result = app.execute("switch_interval")
    assert result.outputs["switch_interval"]["result"] == pytest.approx(0.0005)
