"""Security end to end: a real `nexus serve` in production mode (auth on) with two ingress
replicas, keys made with `nexus keys`, and every channel: REST, SSE, WebSocket, MCP, CLI."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import websockets

from .conftest import ROOT, free_port
from .server_process import ServerProcess

SECRET = "integration-secret-" + "k" * 32
AUDIENCE = "nexus-tests"
BIN = Path(sys.executable).parent
NEXUS = str(BIN / "nexus")


def token(sub: str, tenant: str, *roles: str, **claims: Any) -> str:
    body = {"sub": sub, "tenant": tenant, "roles": list(roles), "aud": AUDIENCE, "exp": time.time() + 900}
    return jwt.encode(body | claims, SECRET, "HS256")


@dataclass
class Secure:
    """The running server and its credentials."""

    server: ServerProcess
    home: Path
    keys: dict[str, dict[str, Any]]  # name -> nexus keys create output

    @property
    def url(self) -> str:
        return self.server.url

    def key(self, name: str) -> str:
        return str(self.keys[name]["api_key"])


def nexus(*args: str, home: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **({"NEXUS_HOME": str(home)} if home else {})}
    return subprocess.run([NEXUS, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    tmp = tmp_path_factory.mktemp("secure")
    home = tmp / ".nexus"
    keys = {}
    for name, tenant, role in [
        ("admin_a", "acme", "admin"),
        ("viewer_a", "acme", "viewer"),
        ("admin_b", "beta", "admin"),
        ("doomed", "acme", "admin"),
    ]:
        made = nexus("keys", "create", "--tenant", tenant, "--role", role, "--name", name, "-o", "json", home=home)
        assert made.returncode == 0, made.stderr
        keys[name] = json.loads(made.stdout)
    env = {
        "NEXUS_ENV": "production",
        "NEXUS_HOME": str(home),
        "NEXUS_JWT_SECRET": SECRET,
        "NEXUS_JWT_AUDIENCE": AUDIENCE,
        "NEXUS_JWT_LEEWAY_S": "2",
        "NEXUS_INGRESS": "default",
        "NEXUS_INGRESS_REPLICAS": "2",
        "NEXUS_MAX_RUNS_PER_TENANT": "3",
    }
    server = ServerProcess(ROOT / "tests" / "integration" / "secure_app.py", free_port(), tmp, env, tmp / "serve.log")
    try:
        server.wait_for_banner()
        yield Secure(server, home, keys)
    finally:
        server.stop()


def test_production_without_credentials_refuses_to_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [NEXUS, "serve", str(ROOT / "examples" / "quickstart.py"), "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NEXUS_ENV": "production", "NEXUS_HOME": str(tmp_path / "empty")},
    )
    assert done.returncode == 2
    assert "no credential is configured" in done.stderr and "NEXUS_JWT_SECRET" in done.stderr


# -- 401 on every channel ------------------------------------------------------------------
BAD = ["missing", "expired", "not_yet_valid", "wrong_signature", "wrong_audience", "revoked_key"]


def bad_credential(secure: Secure, kind: str) -> str | None:
    if kind == "revoked_key":
        return revoke(secure, "doomed")
    return {
        "missing": None,
        "expired": token("ann", "acme", "admin", exp=time.time() - 600),
        "not_yet_valid": token("ann", "acme", "admin", nbf=time.time() + 600),
        "wrong_signature": jwt.encode({"sub": "a", "tenant": "acme", "aud": AUDIENCE, "exp": 9e9}, "z" * 40, "HS256"),
        "wrong_audience": token("ann", "acme", "admin", aud="someone-else"),
    }[kind]


def revoke(secure: Secure, name: str) -> str:
    """Revoke a key with the CLI (on the store, while serving); its key once refused."""
    key = secure.key(name)
    if secure.keys[name].get("revoked_at") is None:
        done = nexus("keys", "revoke", secure.keys[name]["key_id"], home=secure.home)
        assert done.returncode == 0, done.stderr
        secure.keys[name]["revoked_at"] = json.loads(done.stdout)["revoked_at"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # every replica follows the store within about a second
            if all(rest(secure, "GET", "/runs", key).status_code == 401 for _ in range(6)):
                break
            time.sleep(0.2)
    return key


def rest(
    secure: Secure, method: str, path: str, credential: str | None, headers: dict[str, str] | None = None, **kwargs: Any
) -> httpx.Response:
    auth = {"Authorization": f"Bearer {credential}"} if credential else {}
    return httpx.request(method, secure.url + path, headers=auth | (headers or {}), timeout=60, **kwargs)


async def socket_messages(url: str, headers: dict[str, str] | None, sends: list[Any]) -> tuple[list[Any], int | None]:
    """The messages a WebSocket receives after ``sends``, until it closes (and its close code)."""
    async with websockets.connect(url, additional_headers=headers or {}) as ws:
        for message in sends:
            await ws.send(json.dumps(message))
        received: list[Any] = []
        try:
            while True:
                received.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
        except websockets.ConnectionClosed as closed:
            return received, closed.rcvd.code if closed.rcvd else None


async def mcp_call(
    secure: Secure, credential: str | None, tool: str, arguments: dict[str, Any]
) -> tuple[set[str], Any]:
    """The tools the caller sees, and the result of one call."""
    tools, results = await mcp_calls(secure, credential, tool, arguments, 1)
    return tools, results[0]


async def mcp_calls(
    secure: Secure, credential: str | None, tool: str, arguments: dict[str, Any], times: int
) -> tuple[set[str], list[Any]]:
    """The tools the caller sees, and the results of ``times`` calls in a row."""
    from mcp import Client
    from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client

    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    http = create_mcp_http_client(headers=headers)
    async with Client(streamable_http_client(secure.url + "/mcp", http_client=http)) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        return tools, [await client.call_tool(tool, arguments) for _ in range(times)]


def leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


@pytest.mark.parametrize("kind", BAD)
async def test_bad_credentials_are_401_on_every_channel(secure: Secure, kind: str) -> None:
    credential = bad_credential(secure, kind)
    r = rest(secure, "GET", "/workflows", credential)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), r.text
    sse = rest(secure, "GET", "/runs/0123/events", credential)
    assert sse.status_code == 401
    ws_url = secure.url.replace("http://", "ws://") + "/ws/double_plus_one"
    attempts: list[tuple[dict[str, str] | None, list[Any]]] = [(None, [{"inputs": {"x": 1}}])]  # no token first
    if credential:  # in a header, or as the first message (browsers)
        attempts = [({"Authorization": f"Bearer {credential}"}, []), (None, [{"token": credential}])]
    for headers, sends in attempts:
        messages, code = await socket_messages(ws_url, headers, sends)
        assert code == 4401 and messages[0]["error"]["status"] == 401, messages
    with pytest.raises(BaseException) as raised:  # noqa: B017, PT011 - the SDK wraps the HTTP error
        await mcp_call(secure, credential, "double_plus_one", {"x": 1})
    assert any("error response" in str(leaf) or "401" in str(leaf) for leaf in leaves(raised.value)), raised.value
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    raw = rest(
        secure, "POST", "/mcp", credential, json=initialize, headers={"accept": "application/json, text/event-stream"}
    )
    assert raw.status_code == 401 and raw.headers["www-authenticate"].startswith("Bearer")
    cli = nexus("list", "--url", secure.url, *(["--token", credential] if credential else []))
    assert cli.returncode == 9, cli.stderr


# -- tenants and roles -----------------------------------------------------------------------
async def test_tenant_b_cannot_see_run_in_cancel_or_subscribe_to_tenant_a(secure: Secure) -> None:
    a, b = secure.key("admin_a"), secure.key("admin_b")
    started = rest(secure, "POST", "/workflows/slow/execute", a, json={"inputs": {"seconds": 3}, "mode": "async"})
    run_id = started.json()["run_id"]
    session_id = rest(secure, "POST", "/sessions", a, json={"state": {"who": "acme"}}).json()["session_id"]
    for method, path in [
        ("GET", f"/runs/{run_id}"),
        ("POST", f"/runs/{run_id}/cancel"),
        ("GET", f"/runs/{run_id}/events"),
        ("GET", f"/sessions/{session_id}"),
        ("PATCH", f"/sessions/{session_id}"),
        ("GET", f"/sessions/{session_id}/events"),
    ]:
        assert rest(secure, method, path, b, json={} if method == "PATCH" else None).status_code == 404, path
    in_a_session = {"inputs": {"x": 1}, "session_id": session_id}
    assert rest(secure, "POST", "/workflows/double_plus_one/execute", b, json=in_a_session).status_code == 404
    assert run_id not in {r["run_id"] for r in rest(secure, "GET", "/runs", b).json()["runs"]}
    base = secure.url.replace("http://", "ws://")
    headers = {"X-API-Key": b}
    messages, _ = await socket_messages(f"{base}/ws/sessions/{session_id}", headers, [])
    assert messages[0]["error"]["status"] == 404
    async with websockets.connect(f"{base}/ws/double_plus_one", additional_headers=headers) as ws:
        for message in ({"cancel": run_id}, {"inputs": {"x": 1}, "session_id": session_id}):
            await ws.send(json.dumps(message))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert reply["type"] == "error" and reply["error"]["status"] == 404, reply
    _, status = await mcp_call(secure, b, "nexus_run_status", {"run_id": run_id})
    assert status.is_error and "No run with id" in status.content[0].text
    _, joined = await mcp_call(secure, b, "double_plus_one", {"x": 1, "session_id": session_id})
    assert joined.is_error and "No session" in joined.content[0].text
    assert nexus("runs", "show", run_id, "--url", secure.url, "--token", b).returncode == 4
    assert nexus("sessions", "show", session_id, "--url", secure.url, "--token", b).returncode == 4
    final = rest(secure, "GET", f"/runs/{run_id}", a).json()  # tenant A still has it, untouched
    assert final["status"] in ("running", "completed") and rest(secure, "GET", f"/runs/{run_id}", a).is_success


async def test_a_viewer_cannot_execute_on_any_channel(secure: Secure) -> None:
    viewer = secure.key("viewer_a")
    r = rest(secure, "POST", "/workflows/double_plus_one/execute", viewer, json={"inputs": {"x": 1}})
    assert r.status_code == 403 and "'execute'" in r.json()["detail"]
    ws_url = secure.url.replace("http://", "ws://") + "/ws/double_plus_one"
    messages, code = await socket_messages(ws_url, {"X-API-Key": viewer}, [])
    assert code == 4403 and messages[0]["error"]["permission"] == "execute"
    tools, result = await mcp_call(secure, viewer, "double_plus_one", {"x": 1})
    assert "double_plus_one" not in tools and result.is_error and "'execute'" in result.content[0].text
    cli = nexus("run", "double_plus_one", "-i", "x=1", "--url", secure.url, "--token", viewer)
    assert cli.returncode == 9 and "execute" in cli.stderr
    assert rest(secure, "GET", "/runs", viewer).status_code == 200  # reading is allowed


# -- limits ---------------------------------------------------------------------------------------
def test_rate_limit_holds_across_two_replicas(secure: Secure) -> None:
    # A principal of its own (a fresh bucket), in a tenant of its own: at most 3 requests at
    # once stay within the tenant's limit of 3 runs, so every refusal is the rate limit's.
    credential = token("rita", "rates", "admin")

    def one(_: int) -> httpx.Response:
        with httpx.Client(timeout=60) as client:  # a new connection each: spread over both replicas
            return client.post(
                secure.url + "/workflows/limited/execute",
                json={"inputs": {"x": 1}},
                headers={"Authorization": f"Bearer {credential}"},
            )

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        responses = list(pool.map(one, range(60)))
    allowed = 30 + (time.monotonic() - started) * 30 / 60  # the bucket, plus its refill meanwhile
    ok = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert len(ok) + len(limited) == 60, server_errors(secure)
    assert abs(len(ok) - allowed) <= 3, (len(ok), allowed)  # 30/minute, within 10%
    assert int(limited[0].headers["retry-after"]) >= 1 and limited[0].headers["ratelimit-limit"] == "30"
    # MCP spends the same bucket: what REST left in it (at most 3, see above, and a token leased
    # by each replica) and its refill of 1 token per 2 s (also while the client connects) go
    # through; the other calls of 20 in a row are refused, saying why. Which of them passes is
    # timing (a refill can fall before the last call), so the test counts them.
    started = time.monotonic()
    _, results = asyncio.run(mcp_calls(secure, credential, "limited", {"x": 1}, times=20))
    budget = 3 + 2 + (time.monotonic() - started) * 30 / 60
    refused = [r for r in results if r.is_error]
    assert refused and all("Rate limit" in r.content[0].text for r in refused), results
    assert len(results) - len(refused) <= budget + 1, (len(results) - len(refused), budget)


def test_concurrent_runs_per_tenant_are_limited(secure: Secure) -> None:
    credential = token("gus", "gamma", "admin")
    body = {"inputs": {"seconds": 4}, "mode": "async"}
    accepted = [rest(secure, "POST", "/workflows/slow/execute", credential, json=body) for _ in range(3)]
    assert [r.status_code for r in accepted] == [202, 202, 202]
    fourth = rest(secure, "POST", "/workflows/slow/execute", credential, json=body)
    assert fourth.status_code == 429 and fourth.headers["retry-after"] == "1"
    assert "3 runs" in fourth.json()["detail"]
    other = token("ann", "acme", "admin")  # another tenant is not affected
    assert rest(secure, "POST", "/workflows/double_plus_one/execute", other, json={"inputs": {"x": 1}}).is_success


# -- audit and logs -----------------------------------------------------------------------------
def test_every_action_leaves_an_audit_entry(secure: Secure) -> None:
    admin = secure.key("admin_a")
    marker = rest(secure, "POST", "/workflows/double_plus_one/execute", admin, json={"inputs": {"x": 7}})
    run_id = marker.json()["run_id"]
    nexus("runs", "show", run_id, "--url", secure.url, "--token", admin)
    asyncio.run(mcp_call(secure, admin, "double_plus_one", {"x": 2}))
    asyncio.run(websocket_run(secure, admin))
    assert rest(secure, "GET", "/runs/0123456789", admin).status_code == 404
    acme = {
        ("rest", "execute", "ok"),
        ("cli", "get_run", "ok"),
        ("mcp", "execute", "ok"),
        ("websocket", "execute", "ok"),
        ("rest", "execute", "denied"),
        ("mcp", "execute", "denied"),
        ("cli", "execute", "denied"),
        ("rest", "get_run", "not_found"),
    }
    entries = audit_until(secure, admin, acme, run_id)
    assert all(e["tenant"] == "acme" for e in entries)
    text = json.dumps(entries)
    assert all(secure.key(name) not in text for name in secure.keys) and SECRET not in text
    rates = {("rest", "execute", "rate_limited"), ("mcp", "execute", "rate_limited")}
    audit_until(secure, token("rita", "rates", "admin"), rates)  # the rate-limit test's tenant
    assert nexus("audit", "--url", secure.url, "--token", secure.key("viewer_a")).returncode == 9


def audit_until(
    secure: Secure, credential: str, wanted: set[tuple[str, str, str]], target: str | None = None
) -> list[dict[str, Any]]:
    """The tenant's audit entries (via `nexus audit`) once they hold ``wanted``."""
    deadline = time.monotonic() + 10
    while True:
        done = nexus("audit", "--limit", "1000", "-o", "json", "--url", secure.url, "--token", credential)
        assert done.returncode == 0, done.stderr
        entries: list[dict[str, Any]] = json.loads(done.stdout)
        seen = {(e["channel"], e["action"], e["outcome"]) for e in entries}
        found = wanted <= seen and (target is None or any(e["target"] == target for e in entries))
        if found or time.monotonic() > deadline:
            assert found, (sorted(wanted - seen), target)
            return entries
        time.sleep(0.3)  # replicas flush their entries every 0.25 s


def server_errors(secure: Secure) -> str:
    """The tracebacks of unhandled errors in the server's Ray logs (for a failure message)."""
    found = []
    for path in secure.server.ray_log_files():
        text = path.read_text(errors="replace")
        at = text.find("unhandled error")
        if at >= 0:
            found.append(f"{path.name}: {text[at : at + 4000]}")
    return "\n".join(found) or "no unhandled error logged"


async def websocket_run(secure: Secure, credential: str) -> None:
    """One run over /ws/double_plus_one, the token sent as the first message."""
    async with websockets.connect(secure.url.replace("http://", "ws://") + "/ws/double_plus_one") as ws:
        await ws.send(json.dumps({"token": credential}))
        await ws.send(json.dumps({"inputs": {"x": 3}}))
        while (event := json.loads(await asyncio.wait_for(ws.recv(), 10)))["type"] != "run.completed":
            assert event["type"] != "error", event
        assert event["data"]["outputs"]["add_one"]["result"]["value"] == 7


def test_logs_never_contain_credentials_or_secret_inputs(secure: Secure) -> None:
    admin = secure.key("admin_a")
    note = "TOP-SECRET-NOTE-4711"
    for seconds, status in (("x", 422), (0, 200)):
        body = {"inputs": {"seconds": seconds, "secret_note": note}}
        assert rest(secure, "POST", "/workflows/slow/execute", admin, json=body).status_code == status
    secrets = [secure.key(name) for name in secure.keys] + [SECRET, note, token("ann", "acme", "admin")]
    logs = [secure.server.log, *secure.server.ray_log_files()]  # Ray's too
    assert len(logs) > 10, logs  # the server's Ray logs were found
    for path in logs:
        text = path.read_bytes().decode("utf-8", "replace")
        assert not [s for s in secrets if s in text], path


def test_schemathesis_finds_no_server_error(secure: Secure, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "run",
            f"{secure.url}/openapi.json",
            "-H",
            f"X-API-Key: {secure.key('admin_a')}",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "5",
            "--request-timeout",
            "10",
            "--phases",
            "examples,coverage,fuzzing",
            "--generation-deterministic",
            # A session's event stream follows the session until it is deleted; slow sleeps.
            "--exclude-path",
            "/sessions/{session_id}/events",
            "--exclude-path",
            "/workflows/slow/execute",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # schemathesis keeps a cache in its working directory
    )
    assert done.returncode == 0, done.stdout[-4000:]
    assert "passed" in done.stdout and "server error" not in done.stdout.lower()
