"""The REST channel with auth on, in process (no Ray): 401s, 403s, tenant isolation
(404s), API keys and their revocation, per-workflow rate limits, the audit trail."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from nexus_ray import Nexus, Settings
from nexus_ray.channels.http.app import build_http_app
from nexus_ray.runtime.run_service import RunService
from nexus_ray.runtime.security_service import SecurityService
from nexus_ray.runtime.session_service import SessionService
from nexus_ray.security.admin import create_api_key, revoke_api_key
from nexus_ray.security.guard import Guard
from nexus_ray.security.tenancy import tenant_tag
from nexus_ray.store import Store
from nexus_ray.store.backends import SQLiteBackend

from ..helpers import double_plus_one
from ..test_http_app import InProcessRunner, InProcessSessions

SECRET = "test-secret-" + "x" * 32


def token(sub: str, tenant: str, *roles: str, **extra: Any) -> dict[str, str]:
    body = {"sub": sub, "tenant": tenant, "roles": list(roles), "exp": time.time() + 600} | extra
    return {"Authorization": f"Bearer {jwt.encode(body, SECRET, 'HS256')}"}


ADMIN_A = token("ann", "acme", "admin")
VIEWER_A = token("vic", "acme", "viewer")
ADMIN_B = token("bob", "beta", "admin")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Path]]:
    app = Nexus(port=0)
    app.register("double_plus_one", double_plus_one())
    app.register("limited", double_plus_one(), rate_limit="3/minute")
    db = tmp_path_factory.mktemp("store") / "nexus.db"
    workflows = {name: item.workflow for name, item in app.workflows.items()}
    sessions = InProcessSessions(SessionService("s0", lambda: Store(SQLiteBackend(db))))
    service = RunService("h0", workflows, store_factory=lambda: Store(SQLiteBackend(db)), sessions=sessions)
    roles = {"limited_only": {"limited": ["execute", "read"]}}
    settings = Settings(auth=True, jwt_secret=SECRET, jwt_leeway_s=1, roles=roles)
    guard = Guard(settings, SecurityService(lambda: Store(SQLiteBackend(db))))
    http_app = build_http_app(app.workflows, InProcessRunner(service), sessions, settings, guard=guard)
    with TestClient(http_app) as client:
        yield client, db
    service.close()


def run(client: TestClient, headers: dict[str, str], x: int = 5, name: str = "double_plus_one") -> Any:
    return client.post(f"/workflows/{name}/execute", json={"inputs": {"x": x}}, headers=headers)


def test_health_and_ready_are_open_everything_else_needs_a_credential(world: Any) -> None:
    client, _ = world
    assert client.get("/health").status_code == 200
    for path in ("/workflows", "/runs", "/sessions", "/docs", "/openapi.json", "/metrics", "/audit"):
        r = client.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"].startswith("Bearer") and "No credential" in r.json()["detail"]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (token("ann", "acme", "admin", exp=time.time() - 60), "expired"),
        (token("ann", "acme", "admin", nbf=time.time() + 600), "not valid yet"),
        ({"Authorization": "Bearer " + jwt.encode({"sub": "a", "tenant": "t", "exp": 9e9}, "y" * 40)}, "signature"),
        ({"Authorization": "Basic abc"}, "must be 'Bearer"),
        ({"X-API-Key": "nxk_nope_nope"}, "not valid"),
    ],
)
def test_bad_credentials_are_401_naming_why(world: Any, headers: dict[str, str], reason: str) -> None:
    client, _ = world
    r = run(client, headers)
    assert r.status_code == 401 and reason in r.json()["detail"]


def test_a_viewer_reads_but_cannot_execute(world: Any) -> None:
    client, _ = world
    r = run(client, VIEWER_A)
    assert r.status_code == 403 and "Permission 'execute' on workflow 'double_plus_one'" in r.json()["detail"]
    run_id = run(client, ADMIN_A).json()["run_id"]
    assert client.get(f"/runs/{run_id}", headers=VIEWER_A).json()["status"] == "completed"
    assert client.post("/sessions", json={}, headers=VIEWER_A).status_code == 403
    assert client.post(f"/runs/{run_id}/cancel", headers=VIEWER_A).status_code == 403


def test_tenants_cannot_see_each_others_runs_or_sessions(world: Any) -> None:
    client, _ = world
    body = run(client, ADMIN_A).json()
    run_id = body["run_id"]
    assert body["outputs"]["add_one"]["result"]["value"] == 11 and run_id.endswith(tenant_tag("acme"))
    session_id = client.post("/sessions", json={"state": {"x": 1}}, headers=ADMIN_A).json()["session_id"]
    unknown_run = client.get("/runs/ffff", headers=ADMIN_B).json()["detail"].replace("ffff", run_id)
    for method, path in [
        ("GET", f"/runs/{run_id}"),
        ("POST", f"/runs/{run_id}/cancel"),
        ("GET", f"/runs/{run_id}/events?follow=false"),
        ("GET", f"/sessions/{session_id}"),
        ("PATCH", f"/sessions/{session_id}"),
        ("DELETE", f"/sessions/{session_id}"),
        ("GET", f"/sessions/{session_id}/events?follow=false"),
    ]:
        r = client.request(method, path, json={} if method == "PATCH" else None, headers=ADMIN_B)
        assert r.status_code == 404, (method, path, r.text)
        if path.startswith("/runs/") and method == "GET" and "events" not in path:
            assert r.json()["detail"] == unknown_run  # indistinguishable from an unknown id
    in_session = {"inputs": {}, "session_id": session_id}
    assert client.post("/workflows/double_plus_one/execute", json=in_session, headers=ADMIN_B).status_code == 404
    listed_b = client.get("/runs", headers=ADMIN_B).json()["runs"]
    assert run_id not in {r["run_id"] for r in listed_b}
    assert run_id in {r["run_id"] for r in client.get("/runs", headers=ADMIN_A).json()["runs"]}
    assert session_id not in {s["session_id"] for s in client.get("/sessions", headers=ADMIN_B).json()["sessions"]}
    assert client.get(f"/sessions/{session_id}", headers=ADMIN_A).json()["state"] == {"x": 1}


def test_idempotency_keys_are_per_tenant(world: Any) -> None:
    client, _ = world
    key = {"Idempotency-Key": "same-key"}
    a = run(client, ADMIN_A | key, 1).json()["run_id"]
    b = run(client, ADMIN_B | key, 2).json()  # another tenant: its own run, no 409
    assert b["run_id"] != a and b["outputs"]["add_one"]["result"]["value"] == 5


def test_api_keys_authenticate_and_revocation_takes_effect(world: Any) -> None:
    client, db = world
    store = Store(SQLiteBackend(db))
    created = create_api_key(store, "acme", ["admin"], "ci")
    deadline = time.monotonic() + 5
    while run(client, {"X-API-Key": created["api_key"]}).status_code == 401 and time.monotonic() < deadline:
        time.sleep(0.1)  # the replica's copy follows the store within a second
    assert run(client, {"X-API-Key": created["api_key"]}).status_code == 200
    assert run(client, {"Authorization": f"Bearer {created['api_key']}"}).status_code == 200
    revoke_api_key(store, created["key_id"])
    store.close()
    deadline = time.monotonic() + 5
    while run(client, {"X-API-Key": created["api_key"]}).status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    r = run(client, {"X-API-Key": created["api_key"]})
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_per_workflow_rate_limit_429_with_headers(world: Any) -> None:
    client, _ = world
    who = token("rita", "acme", "admin")
    statuses = [run(client, who, name="limited").status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    r = run(client, who, name="limited")
    assert int(r.headers["retry-after"]) >= 1 and r.headers["ratelimit-limit"] == "3"
    assert r.headers["ratelimit-remaining"] == "0" and "rate limit" in r.json()["detail"].lower()
    assert run(client, token("other", "acme", "admin"), name="limited").status_code == 200  # per principal
    assert run(client, who).status_code == 200  # other workflows are not limited


def test_every_action_is_audited_per_tenant_without_credentials(world: Any) -> None:
    client, _ = world
    run_id = run(client, ADMIN_A).json()["run_id"]
    run(client, VIEWER_A)
    run(client, ADMIN_B)  # so beta has entries of its own, whichever tests ran before
    client.get("/runs/ffff", headers=ADMIN_A)
    assert client.get("/audit", headers=VIEWER_A).status_code == 403
    entries = client.get("/audit", params={"limit": 1000}, headers=ADMIN_A).json()["entries"]
    executed = [e for e in entries if e["target"] == run_id]
    assert executed and executed[0] | {"audit_id": "", "at": 0} == {
        "audit_id": "",
        "at": 0,
        "tenant": "acme",
        "subject": "ann",
        "channel": "rest",
        "action": "execute",
        "target": run_id,
        "workflow": "double_plus_one",
        "outcome": "ok",
        "status": 200,
        "detail": None,
    }
    outcomes = {(e["subject"], e["action"], e["outcome"]) for e in entries}
    assert ("vic", "execute", "denied") in outcomes and ("ann", "get_run", "not_found") in outcomes
    assert all(e["tenant"] == "acme" for e in entries)
    text = str(entries)
    assert SECRET not in text and "Bearer" not in text
    beta = client.get("/audit", params={"limit": 1000}, headers=ADMIN_B).json()["entries"]
    assert beta and all(e["tenant"] == "beta" for e in beta)


def test_the_audit_trail_pages_by_its_cursor_and_refuses_any_other(world: Any) -> None:
    client, _ = world
    run(client, ADMIN_A)
    run(client, ADMIN_A)
    first = client.get("/audit", params={"limit": 1}, headers=ADMIN_A).json()
    second = client.get("/audit", params={"limit": 1, "cursor": first["next_cursor"]}, headers=ADMIN_A).json()
    assert second["entries"][0]["audit_id"] < first["entries"][0]["audit_id"] == first["next_cursor"]
    refused = client.get("/audit", params={"cursor": "zz"}, headers=ADMIN_A)
    assert refused.status_code == 400 and refused.json()["field"] == "cursor"
    not_a_time = client.get("/audit", params={"since": "nan"}, headers=ADMIN_A)  # would match nothing
    assert not_a_time.status_code == 422 and not_a_time.json()["errors"][0]["field"] == "query.since"


def test_docs_and_metrics_can_be_opened_by_configuration(tmp_path: Path) -> None:
    app = Nexus(port=0)
    app.register("double_plus_one", double_plus_one())
    db = tmp_path / "nexus.db"
    workflows = {name: item.workflow for name, item in app.workflows.items()}
    sessions = InProcessSessions(SessionService("s0", lambda: Store(SQLiteBackend(db))))
    service = RunService("h0", workflows, store_factory=lambda: Store(SQLiteBackend(db)), sessions=sessions)
    settings = Settings(auth=True, jwt_secret=SECRET, public_docs=True, public_metrics=True)
    http_app = build_http_app(
        app.workflows,
        InProcessRunner(service),
        sessions,
        settings,
        guard=Guard(settings, SecurityService(lambda: Store(SQLiteBackend(db)))),
    )
    with TestClient(http_app) as client:
        assert client.get("/openapi.json").status_code == 200 and client.get("/docs").status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/workflows").status_code == 401
        assert client.get("/metrics", headers=VIEWER_A).status_code == 200  # open means open
    service.close()


def test_metrics_need_admin_when_protected(world: Any) -> None:
    client, _ = world
    assert client.get("/metrics", headers=VIEWER_A).status_code == 403
    assert client.get("/metrics", headers=ADMIN_A).status_code == 200


def test_api_keys_and_roles_from_python(tmp_path: Path) -> None:
    from nexus_ray.errors import ConfigurationError, NotFoundError

    app = Nexus(home=tmp_path, auth=True)
    made = app.create_api_key("acme", "viewer", name="dash")
    assert made["api_key"].startswith("nxk_") and made["roles"] == ["viewer"]
    assert [k["key_id"] for k in app.list_api_keys()] == [made["key_id"]]
    assert "api_key" not in app.list_api_keys()[0]
    assert app.revoke_api_key(made["key_id"])["revoked_at"] is not None
    with pytest.raises(NotFoundError):
        app.revoke_api_key("nope")
    app.define_role("reporter", {"report_*": ["execute", "read"]})
    assert app.settings.roles == {"reporter": {"report_*": ["execute", "read"]}}
    with pytest.raises(ConfigurationError, match="unknown actions"):
        app.define_role("bad", {"*": ["fly"]})


def test_auth_on_without_any_credential_refuses_to_start(tmp_path: Path) -> None:
    from nexus_ray.errors import ConfigurationError
    from nexus_ray.security.admin import check_security

    with pytest.raises(ConfigurationError, match="NEXUS_JWT_SECRET") as err:
        check_security(Settings(home=tmp_path, env="production"))
    assert "nexus keys create" in err.value.message
    check_security(Settings(home=tmp_path))  # development: auth off
    check_security(Settings(home=tmp_path, env="production", jwt_secret=SECRET))
    app = Nexus(home=tmp_path, env="production")
    app.create_api_key("acme", ["admin"])
    check_security(app.settings)  # an active API key is enough
    with pytest.raises(ConfigurationError, match="100/minute"):
        check_security(Settings(home=tmp_path, rate_limit="lots"))


def test_paging_goes_on_past_runs_the_caller_may_not_read(world: Any) -> None:
    client, _ = world
    mine = run(client, token("lim", "paging", "limited_only"), name="limited").json()["run_id"]
    others = [run(client, token("adm", "paging", "admin"), x).json()["run_id"] for x in range(3)]
    who = token("lim", "paging", "limited_only")
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = client.get("/runs", params=params, headers=who).json()
        seen += [r["run_id"] for r in page["runs"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [mine] and pages >= 4  # three pages hid a run it may not read, and went on
    assert not set(others) & set(seen)
    hidden = client.get(f"/runs/{others[0]}", headers=who)
    assert hidden.status_code == 403 and "'read' on workflow 'double_plus_one'" in hidden.json()["detail"]


@pytest.mark.parametrize("first", ['{"nope": 1}', "[" * 5000 + "]" * 5000])
def test_a_first_websocket_message_without_a_token_is_refused_as_401(world: Any, first: str) -> None:
    client, _ = world
    with client.websocket_connect("/ws/double_plus_one") as ws:
        ws.send_text(first)
        reply = ws.receive_json()
    assert reply["type"] == "error" and reply["error"]["status"] == 401, reply
