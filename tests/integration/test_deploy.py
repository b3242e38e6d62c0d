"""`serve deploy deployments/nexus.yaml` against `ray start --head` brings the example app
up; `nexus deploy APP --address HOST:PORT`, then `--address ray://...`, deploy it again
over it (its actors replaced, its sessions kept in the store); each outlives the process
that deployed it."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from nexus_ray.testing.fake_cluster import cluster_processes

from .conftest import ROOT, free_port

BIN = Path(sys.executable).parent


class LocalHead:
    """`ray start --head` (with the dashboard `serve deploy` talks to) on private ports and
    a temp dir, started from the project directory; stopped by PID."""

    def __init__(self) -> None:
        self.temp_dir = tempfile.mkdtemp(prefix="nexus-deploy-")
        self.port, self.dashboard, self.http_port, self.client_port = free_port(), free_port(), free_port(), free_port()
        self.env = {
            **os.environ,
            "RAY_AUTH_MODE": "disabled",
            "RAY_USAGE_STATS_ENABLED": "0",
            "NEXUS_HOME": f"{self.temp_dir}/home",
            "NEXUS_PORT": str(self.http_port),
            "NEXUS_INGRESS": "default",
        }
        for name in ("RAY_ADDRESS", "NEXUS_RAY_ADDRESS", "RAY_SERVE_ENABLE_HA_PROXY", "RAY_SERVE_THROUGHPUT_OPTIMIZED"):
            self.env.pop(name, None)

    def start(self) -> None:
        command = [
            str(BIN / "ray"),
            "start",
            "--head",
            f"--port={self.port}",
            f"--temp-dir={self.temp_dir}",
            "--num-cpus=2",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard}",
            f"--dashboard-agent-listen-port={free_port()}",
            f"--ray-client-server-port={self.client_port}",
            "--disable-usage-stats",
        ]
        self.run(command)

    def run(self, command: list[str]) -> str:
        done = subprocess.run(command, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command[:3]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    def stop(self) -> list[psutil.Process]:
        procs = cluster_processes(self.temp_dir)
        for proc in procs:
            proc.terminate()
        _, alive = psutil.wait_procs(procs, timeout=10)
        for proc in alive:
            proc.kill()
        psutil.wait_procs(alive, timeout=5)
        return cluster_processes(self.temp_dir)


@pytest.fixture(scope="module")
def head() -> Iterator[LocalHead]:
    cluster = LocalHead()
    cluster.start()
    try:
        yield cluster
    finally:
        assert cluster.stop() == [], "a process of the test's Ray head outlived its stop"


def wait_healthy(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} never became healthy")


def test_serve_deploy_then_nexus_deploy_over_it(head: LocalHead, tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "deployments" / "nexus.yaml").read_text())
    config["http_options"]["port"] = head.http_port
    path = tmp_path / "nexus.yaml"
    path.write_text(yaml.safe_dump(config))
    head.run([str(BIN / "serve"), "deploy", str(path), "--address", f"http://127.0.0.1:{head.dashboard}"])
    url = f"http://127.0.0.1:{head.http_port}"
    wait_healthy(url)
    with httpx.Client(base_url=url, timeout=30) as http:
        run = http.post("/workflows/double_plus_one/execute", json={"inputs": {"x": 5}}).json()
        assert run["outputs"]["add_one"]["result"]["value"] == 11
        session = http.post("/sessions", json={"state": {"cart": [1, 2]}}).json()["session_id"]
        status = head.run([str(BIN / "serve"), "status", "--address", f"http://127.0.0.1:{head.dashboard}"])
        assert "RUNNING" in status and "NexusIngress" in status

        for address in (f"127.0.0.1:{head.port}", f"ray://127.0.0.1:{head.client_port}"):
            out = head.run([str(BIN / "nexus"), "deploy", "examples/quickstart.py", "--address", address])
            assert f"Deployed examples/quickstart.py as 'nexus' (4 workflows); the cluster serves it at {url}" in out
            wait_healthy(url)
            # The command has ended; the app keeps serving from the cluster, with the same store.
            run = http.post("/workflows/double_plus_one/execute", json={"inputs": {"x": 20}}).json()
            assert run["outputs"]["add_one"]["result"]["value"] == 41
            assert http.get(f"/sessions/{session}").json()["state"] == {"cart": [1, 2]}
