"""The Ray cluster autoscaler adds and removes (fake) worker nodes for a burst of runs,
and a worker node lost mid-run loses no run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from nexus_ray.testing.fake_cluster import FakeCluster

DRIVER = ["-m", "nexus_ray.testing.cluster_burst"]
BURST = 6


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    cluster = FakeCluster(worker_cpus=1, max_workers=3, idle_timeout_s=6)
    cluster.start()
    try:
        home, markers = tmp_path_factory.mktemp("home"), tmp_path_factory.mktemp("markers")
        env = {**os.environ, **cluster.driver_env(), "NEXUS_INGRESS": "default"}
        args = [sys.executable, *DRIVER, cluster.address, cluster.temp_dir, str(home), str(markers), str(BURST)]
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, f"driver failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        yield json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        assert cluster.stop() == [], "a process of the fake cluster outlived stop()"


def test_a_burst_adds_worker_nodes_and_idle_ones_are_removed(report: dict[str, Any]) -> None:
    burst = report["burst"]
    counts = [count for _, count in burst["timeline"]]
    assert counts[0] == 0, "the cluster starts without worker nodes"
    assert max(counts) >= 2, f"the autoscaler added fewer than 2 nodes for {BURST} CPU runs: {counts}"
    assert counts[-1] == 0, f"idle worker nodes were not removed: {burst['timeline'][-5:]}"
    assert burst["statuses"] == ["completed"] * BURST
    assert [out["work"]["result"]["tag"] for out in burst["outputs"]] == [f"burst{i}" for i in range(BURST)]
    ran_on = {node for nodes in burst["attempts"].values() for node in nodes}
    assert len(ran_on) >= 2, "the runs should have spread over the added nodes"
    assert all(len(nodes) == 1 for nodes in burst["attempts"].values()), "a node ran twice without a failure"


def test_a_worker_node_lost_mid_run_loses_no_run(report: dict[str, Any]) -> None:
    loss = report["node_loss"]
    victim = loss["killed_node"]
    assert loss["killed_pids"], "nothing was killed"
    assert loss["statuses"] == ["completed", "completed"]
    first, second = loss["attempts"]["loss0"], loss["attempts"]["loss1"]
    assert first[0] == victim and len(first) == 2 and first[1] != victim, f"not resumed elsewhere: {first}"
    assert loss["outputs"][0]["work"]["result"]["node_id"] == first[1]
    assert len(second) == 1 and second[0] != victim, "the run on the surviving node ran once"
