"""`nexus serve` as a real subprocess on Serve's default proxy: it serves, and SIGINT stops
every process it started within 10 s."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from .conftest import ROOT, free_port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, Path]]:
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "NEXUS_INGRESS": "default", "NEXUS_HOME": str(tmp_path / ".nexus")}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from nexus_ray.channels.cli import main; main()",
                "serve",
                str(ROOT / "examples" / "quickstart.py"),
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
            env=env,
        )
    try:
        yield proc, port, log
    finally:
        if proc.poll() is None:  # the test failed before stopping it: stop what it started
            tree = psutil.Process(proc.pid).children(recursive=True)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
            for child in tree:
                if child.is_running():
                    child.kill()


def wait_for_banner(proc: subprocess.Popen[str], log: Path, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text()
        if "Press Ctrl-C to stop." in text:
            return text
        assert proc.poll() is None, f"nexus serve exited early:\n{text}"
        time.sleep(0.2)
    raise AssertionError(f"no banner within {timeout} s:\n{log.read_text()}")


def test_serve_runs_and_sigint_leaves_nothing(served: tuple[subprocess.Popen[str], int, Path]) -> None:
    proc, port, log = served
    banner = wait_for_banner(proc, log)
    assert "ingress:   Serve default proxy on embedded local Ray" in banner
    assert f"REST docs: http://127.0.0.1:{port}/docs" in banner
    r = httpx.post(f"http://127.0.0.1:{port}/workflows/double_plus_one/execute", json={"inputs": {"x": 5}}, timeout=30)
    assert r.json()["outputs"]["add_one"]["result"]["value"] == 11

    tree = psutil.Process(proc.pid).children(recursive=True)
    names = {p.name() for p in tree}
    assert "raylet" in names and "gcs_server" in names
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 10
    time.sleep(0.5)
    left = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"left behind: {[(p.pid, p.name()) for p in left]}"
    assert "Stopped." in log.read_text()
