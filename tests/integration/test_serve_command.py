"""`nexus serve` as a real subprocess on Serve's default proxy: it serves, and SIGINT stops
every process it started within 10 s; SIGKILL of the whole tree loses no run."""

from __future__ import annotations

import contextlib
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from ..postgres import missing_binaries, new_database, throwaway_postgres
from .conftest import ROOT, free_port
from .server_process import ServerProcess

DURABLE_APP = Path(__file__).with_name("durable_app.py")
HAPROXY_FILES = Path("/tmp/haproxy-serve")  # Serve's default (RAY_SERVE_HAPROXY_CONFIG_FILE_LOC)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[str]:
    missing = missing_binaries()
    if missing:
        pytest.skip(f"PostgreSQL binaries not found on PATH: {', '.join(missing)}")
    with throwaway_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The embedded SQLite store (nothing to set), or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return {}
    return {"NEXUS_STORE_URL": new_database(request.getfixturevalue("postgres_server"))}


def start(
    servers: list[ServerProcess],
    app: Path,
    tmp_path: Path,
    port: int,
    ingress: str = "default",
    extra_env: dict[str, str] | None = None,
) -> ServerProcess:
    env = {"NEXUS_INGRESS": ingress, "NEXUS_HOME": str(tmp_path / ".nexus"), "NEXUS_LEASE_S": "2", **(extra_env or {})}
    server = ServerProcess(app, port, tmp_path, env, tmp_path / f"serve-{len(servers)}.log")
    servers.append(server)
    return server


def test_serve_runs_and_sigint_leaves_nothing(servers: list[ServerProcess], tmp_path: Path) -> None:
    server = start(servers, ROOT / "examples" / "quickstart.py", tmp_path, free_port())
    banner = server.wait_for_banner()
    assert "ingress:   Serve default proxy on embedded local Ray" in banner
    assert f"REST docs: {server.url}/docs" in banner
    r = httpx.post(f"{server.url}/workflows/double_plus_one/execute", json={"inputs": {"x": 5}}, timeout=30)
    assert r.json()["outputs"]["add_one"]["result"]["value"] == 11
    (logs_line,) = [line for line in banner.splitlines() if line.startswith("  host logs: ")]
    logs = Path(logs_line.removeprefix("  host logs: ").removesuffix(" (worker-*.err)"))
    worker_logs = list(logs.glob("worker-*.err"))
    assert worker_logs, f"no worker logs in {logs}"  # where the hosts' warnings go
    noise = [f.name for f in worker_logs if "RayDeprecationWarning" in f.read_text(errors="replace")]
    assert noise == [], f"Ray's deprecation warning in the hosts' logs: {noise}"  # from each host's start

    tree = server.tree()
    assert {"raylet", "gcs_server"} <= {p.name() for p in tree}
    started = time.monotonic()
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=10) == 0
    assert time.monotonic() - started < 10
    time.sleep(0.5)
    left = [p for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert left == [], f"left behind: {[(p.pid, p.name()) for p in left]}"
    assert "Stopped." in server.log.read_text()
    assert not logs.exists()  # the embedded Ray's temp dir goes with it


def test_whole_server_killed_then_restarted_finishes_every_run(
    servers: list[ServerProcess], tmp_path: Path, store_env: dict[str, str]
) -> None:
    """Three runs and a session run mid-node, and two sessions, when every process dies:
    after a restart in the same directory (on the same store) every run completes (no
    completed node runs again) and the sessions are as they were, the session run's
    write-back applied once."""
    port = free_port()
    first = start(servers, DURABLE_APP, tmp_path, port, extra_env=store_env)
    first.wait_for_banner()
    client = httpx.Client(base_url=first.url, timeout=30)
    ada = client.post("/sessions", json={"state": {"name": "ada", "visits": 0}, "ttl_s": 3600}).json()
    ada = client.patch(f"/sessions/{ada['session_id']}", json={"lang": "en"}, headers={"If-Match": '"1"'}).json()
    bob = client.post("/sessions", json={"state": {"name": "bob"}}).json()
    logs = [tmp_path / f"steps-{i}.log" for i in range(3)]
    run_ids = [
        client.post(
            "/workflows/three_steps/execute",
            json={"inputs": {"path": str(log), "slow": {"seconds": 4}}, "mode": "async"},
        ).json()["run_id"]
        for log in logs
    ]
    visit_log = tmp_path / "visit.log"
    visit = {
        "inputs": {"path": str(visit_log), "tally": {"seconds": 4}},
        "session_id": ada["session_id"],
        "mode": "async",
    }
    run_ids.append(client.post("/workflows/slow_visit/execute", json=visit).json()["run_id"])
    deadline = time.monotonic() + 30
    while not all(_logged(log) == ["first", "slow"] for log in logs) or _logged(visit_log) != ["tally"]:
        assert time.monotonic() < deadline, "the slow nodes never started"
        time.sleep(0.05)
    first.kill_all()  # SIGKILL: the server, Ray, the hosts mid-node

    second = start(servers, DURABLE_APP, tmp_path, port, extra_env=store_env)
    second.wait_for_banner()
    client = httpx.Client(base_url=second.url, timeout=30)
    deadline = time.monotonic() + 60
    for run_id in run_ids:
        while (run := client.get(f"/runs/{run_id}").json())["status"] != "completed":
            assert time.monotonic() < deadline and run["status"] in ("pending", "running"), run
            time.sleep(0.1)
        if run["workflow"] == "three_steps":
            assert run["outputs"]["last"]["result"] == "abc"
    for log in logs:
        assert _logged(log) == ["first", "slow", "slow", "last"]  # only the node in flight ran again
    assert _logged(visit_log) == ["tally", "tally"]
    after = client.get(f"/sessions/{ada['session_id']}").json()
    assert after["state"] == {"name": "ada", "visits": 1, "lang": "en"} and after["version"] == ada["version"] + 1
    assert after["ttl_s"] == 3600 and after["created_at"] == ada["created_at"]
    assert client.get(f"/sessions/{bob['session_id']}").json() == bob
    listed = {s["session_id"] for s in client.get("/sessions").json()["sessions"]}
    assert listed == {ada["session_id"], bob["session_id"]}
    assert (tmp_path / ".nexus" / "nexus.db").exists() == ("NEXUS_STORE_URL" not in store_env)  # the store in use


def _logged(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="needs the haproxy ingress")
def test_a_server_killed_alone_leaves_no_haproxy_on_its_port(servers: list[ServerProcess], tmp_path: Path) -> None:
    # HAProxy outlived a SIGKILLed server and kept the port: the restart died with
    # "HAProxy crashed during startup ... Address already in use".
    port = free_port()
    first = start(servers, DURABLE_APP, tmp_path, port, ingress="haproxy")
    first.wait_for_banner()
    tree = first.tree()
    haproxies = [p for p in tree if p.name() == "haproxy"]
    assert haproxies, "the haproxy ingress runs HAProxy"
    # Serve's files of it, in the dir of its Ray node (haproxy -f <dir>/haproxy.cfg): a killed server's stay
    files = {Path(arg).parent for p in haproxies for arg in p.cmdline() if arg.endswith("haproxy.cfg")}
    assert files and all(d.parent == HAPROXY_FILES for d in files), files
    first.proc.kill()  # the server process alone: Ray's processes follow it, HAProxy must too
    first.proc.wait()
    try:
        _, alive = psutil.wait_procs(haproxies, timeout=10)
        assert alive == [], f"HAProxy outlived the server: {alive}"
    finally:
        for p in tree:  # whatever else is left of it (Ray's agents exit on their own, later)
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(tree, timeout=10)
        for directory in files:
            shutil.rmtree(directory, ignore_errors=True)
    haproxy_dirs = set(HAPROXY_FILES.glob("*"))
    second = start(servers, DURABLE_APP, tmp_path, port, ingress="haproxy")
    second.wait_for_banner()
    assert httpx.get(f"{second.url}/health", timeout=10).status_code == 200
    second.stop()
    assert set(HAPROXY_FILES.glob("*")) <= haproxy_dirs, "a server that stops removes its HAProxy files"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_mcp_legacy_and_current_clients_on_two_ingress_replicas(
    servers: list[ServerProcess], tmp_path: Path, mode: str
) -> None:
    from mcp import Client

    server = ServerProcess(
        ROOT / "examples" / "quickstart.py",
        free_port(),
        tmp_path,
        {"NEXUS_INGRESS": "default", "NEXUS_HOME": str(tmp_path / ".nexus"), "NEXUS_INGRESS_REPLICAS": "2"},
        tmp_path / "serve-mcp.log",
    )
    servers.append(server)
    server.wait_for_banner()
    async with Client(f"{server.url}/mcp", mode=mode) as client:  # type: ignore[arg-type]
        assert "double_plus_one" in {t.name for t in (await client.list_tools()).tools}
        for x in range(20):  # requests spread over both replicas; none may lose the session
            result = await client.call_tool("double_plus_one", {"x": x})
            assert result.structured_content["add_one"] == {"result": {"value": 2 * x + 1}}  # type: ignore[index]
