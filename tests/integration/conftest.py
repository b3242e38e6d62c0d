"""One local Ray + Serve (HAProxy ingress when haproxy is on PATH) shared by the whole run."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_SERVE_LOG_TO_STDERR", "0")
# Every app of this run (README examples included) keeps its store in a fresh temp dir,
# removed when the run ends (see run_home).
os.environ["NEXUS_HOME"] = tempfile.mkdtemp(prefix="nexus-test-home-")

import httpx
import pytest

from nexus_ray import Nexus, Settings, WorkflowBuilder
from nexus_ray.loader import load_app
from nexus_ray.testing import free_port

ROOT = Path(__file__).resolve().parents[2]
BODY_LIMIT = 64 * 1024


def whoami() -> int:
    """Reports the process a node runs in."""
    return os.getpid()


def busy_pid(seconds: float) -> dict[str, float]:
    """Sleeps (in a Ray task when given resources); reports its process and when it ran."""
    import time

    started = time.time()
    time.sleep(seconds)
    return {"pid": os.getpid(), "start": started, "end": time.time()}


def switch_interval() -> float:
    """The GIL switch interval of the process a node runs in (its RunHost's)."""
    import sys

    return sys.getswitchinterval()


def remote_failure(reason: str) -> int:
    raise ValueError(reason)


def add_test_workflows(app: Nexus) -> None:
    placed = WorkflowBuilder(description="Two nodes that each need a CPU: they run as Ray tasks.")
    placed.add_node(busy_pid, "a", resources={"num_cpus": 1}).add_node(busy_pid, "b", resources={"num_cpus": 1})
    app.register("placed", placed)
    visit = WorkflowBuilder(description="Greets the session's user and counts visits in the session.")
    visit.add_node("PythonCodeNode", "count", {"code": "result = {'visits': visits + 1, 'greeting': 'hi ' + name}"})
    visit.add_node("SessionUpdateNode", "remember")
    visit.add_connection("count", "result", "remember", "patch")
    app.register("visit", visit)
    app.register("remote_failure", WorkflowBuilder().add_node(remote_failure, "boom", resources={"num_cpus": 0.5}))
    nowhere = WorkflowBuilder(description="Asks for a resource no node of the test cluster has.")
    app.register("nowhere", nowhere.add_node(remote_failure, "train", resources={"resources": {"nexus_absent": 1}}))
    failing = WorkflowBuilder(description="Always fails in its second node.")
    failing.add_node("PythonCodeNode", "prepare", {"code": "result = 0"})
    failing.add_node("PythonCodeNode", "explode", {"code": "result = 1 / zero"})
    failing.add_connection("prepare", "result", "explode", "zero")
    app.register("fails", failing)
    app.register("whoami", whoami)
    app.register("switch_interval", switch_interval)
    from .durable_app import kill_host, slow_visit, three_steps

    app.register("three_steps", three_steps())
    app.register("slow_visit", slow_visit())
    app.register("poison", WorkflowBuilder(description="Kills its host.").add_node(kill_host, "kill"))


@pytest.fixture(scope="session", autouse=True)
def run_home() -> Iterator[None]:
    """Removes the run's NEXUS_HOME; set up before, and so torn down after, every app using it."""
    yield
    shutil.rmtree(os.environ["NEXUS_HOME"], ignore_errors=True)


@pytest.fixture(scope="session")
def app() -> Iterator[Nexus]:
    quickstart = load_app(str(ROOT / "examples" / "quickstart.py"))
    quickstart.settings = Settings(
        port=free_port(),
        max_body_bytes=BODY_LIMIT,
        lease_s=2.0,
        crash_retries=1,
        resource_wait_s=1.0,
        ingress="haproxy" if shutil.which("haproxy") else "default",
    )
    add_test_workflows(quickstart)
    quickstart.start()
    yield quickstart
    quickstart.stop()


@pytest.fixture(scope="session")
def http(app: Nexus) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=app.url, timeout=30) as client:
        yield client
