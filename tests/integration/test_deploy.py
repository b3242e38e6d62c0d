"""`serve deploy deployments/nexus.yaml` against `ray start --head` brings the example app
up; `nexus deploy APP --address HOST:PORT`, then `--address ray://...`, deploy it again
over it (its actors replaced, its sessions kept in the store); each outlives the process
that deployed it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from nexus_ray.testing import free_port
from nexus_ray.testing.local_head import LocalRayHead

from .conftest import ROOT

BIN = Path(sys.executable).parent


class DeployHead(LocalRayHead):
    """A private head with what the deploy paths need: the dashboard (`serve deploy`), a
    Ray Client server (`ray://`), the project directory as working directory (the
    config's relative app path), and the app's settings in its environment."""

    def __init__(self, home: Path) -> None:
        self.dashboard, self.http_port, self.client_port = free_port(), free_port(), free_port()
        args = [
            "--num-cpus=2",
            "--include-dashboard=true",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={self.dashboard}",
            f"--ray-client-server-port={self.client_port}",
        ]
        env = {"NEXUS_HOME": str(home), "NEXUS_PORT": str(self.http_port), "NEXUS_INGRESS": "default"}
        super().__init__(args, env, ROOT)
        for name in ("RAY_SERVE_ENABLE_HA_PROXY", "RAY_SERVE_THROUGHPUT_OPTIMIZED"):
            self.env.pop(name, None)

    def run(self, command: list[str]) -> str:
        done = subprocess.run(command, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{command[:3]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done.stdout


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeployHead]:
    cluster = DeployHead(tmp_path_factory.mktemp("deploy-home"))
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


def test_serve_deploy_then_nexus_deploy_over_it(head: DeployHead, tmp_path: Path) -> None:
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
