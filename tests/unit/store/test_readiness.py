"""/ready against a real PostgreSQL store that refuses connections: 503 naming the store,
then ready again once the hosts can reconnect."""

from __future__ import annotations

import itertools
import time

import psycopg
from fastapi.testclient import TestClient

from nexus_ray import Nexus, Settings
from nexus_ray.channels.http.app import build_http_app
from nexus_ray.runtime.run_service import RunService
from nexus_ray.runtime.session_service import SessionService
from nexus_ray.store import Store
from nexus_ray.store.backends import PostgresBackend

from ..test_http_app import InProcessRunner, InProcessSessions

_names = itertools.count()


def test_ready_is_503_naming_the_store_while_it_is_unavailable(postgres_server: str) -> None:
    name = f"ready{next(_names)}"
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        url = f"{postgres_server}/{name}"
        app = Nexus(port=0)
        app.register("double", lambda x: 2 * x)
        runs = RunService(
            "h0", {"double": app.workflows["double"].workflow}, store_factory=lambda: Store(PostgresBackend(url))
        )
        sessions = SessionService("s0", lambda: Store(PostgresBackend(url)))
        http = build_http_app(app.workflows, InProcessRunner(runs), InProcessSessions(sessions), Settings())
        with TestClient(http) as client:
            assert client.get("/ready").status_code == 200
            admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false")
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            time.sleep(0.3)  # the backends exit after the signal
            down = client.get("/ready")
            assert down.status_code == 503 and down.headers["content-type"] == "application/problem+json"
            problem = down.json()
            assert problem["checks"]["store"].startswith("store: ") and "store: " in problem["detail"]
            assert problem["checks"]["run_hosts"] == "ok"
            assert "Cannot connect to the PostgreSQL store" in problem["checks"]["store"]
            admin.execute(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
            assert client.get("/ready").status_code == 200  # the hosts connected again
        runs.close()
        sessions.close()
