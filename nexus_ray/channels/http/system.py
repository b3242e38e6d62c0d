"""System routes: ``/ready`` (what is up, what is down) and ``/metrics`` (Prometheus), and
the ASGI middleware that counts requests by route and status."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...errors import RuntimeUnavailableError
from .gateway import RunGateway
from .models import Readiness
from .problems import problem_doc
from .sessions import SessionGateway

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"
INGRESS_APP, INGRESS_DEPLOYMENT = "nexus", "NexusIngress"  # the Serve application and deployment
CHECK_TIMEOUT_S = 3.0
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class RequestMetrics:
    """Counts every HTTP request by route template, method and status, with a latency
    histogram (plain ASGI: a few microseconds per request)."""

    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "nexus_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "nexus_http_request_duration_seconds",
            "HTTP request latency by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.requests.labels(route, scope["method"], str(status)).inc()
            self.latency.labels(route).observe(time.perf_counter() - started)


class _Merged:
    """A collector yielding metric families parsed from the hosts' texts, merged by name."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self.families


def merge_texts(texts: Iterable[str]) -> list[Metric]:
    """Families of several Prometheus texts, one family per name with every sample."""
    merged: dict[str, Metric] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            known = merged.setdefault(family.name, family)
            if known is not family:
                known.samples.extend(family.samples)
    return list(merged.values())


def add_system_routes(app: FastAPI, runner: RunGateway, sessions: SessionGateway, registry: CollectorRegistry) -> None:
    """``GET /ready`` and ``GET /metrics``."""

    @app.get(
        "/ready",
        response_model=Readiness,
        tags=["system"],
        summary="Readiness: Ray, Serve, the store and both host pools",
        responses={503: problem_doc("Something is down (named)")},
    )
    async def ready() -> Response:
        checks, pools = await readiness(runner, sessions)
        down = {name: state for name, state in checks.items() if state != "ok"}
        if down:
            named = "; ".join(f"{name}: {state}" for name, state in down.items())
            raise RuntimeUnavailableError(f"Not ready. {named}", checks=checks)
        replicas = await _ingress_replicas()
        body = Readiness(status="ready", checks=checks, ingress_replicas=replicas, host_pools=pools)
        return Response(body.model_dump_json(), media_type="application/json")

    @app.get("/metrics", tags=["system"], summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        texts = await asyncio.gather(runner.metrics_text(), sessions.metrics_text(), return_exceptions=True)
        host_texts = [t for result in texts if not isinstance(result, BaseException) for t in result]
        scrape = CollectorRegistry(auto_describe=False)
        scrape.register(_Merged(merge_texts(host_texts)))
        pools = Gauge("nexus_host_pool_size", "Hosts answering, by pool.", ["pool"], registry=scrape)
        for pool, result in zip(("run", "session"), texts, strict=True):
            pools.labels(pool).set(0 if isinstance(result, BaseException) else len(result))
        body = generate_latest(registry) + generate_latest(scrape)
        return Response(body, media_type=PROMETHEUS)


async def _ingress_replicas() -> int | None:
    """Running replicas of the ingress, from Serve's controller (a blocking call: in a thread)."""
    try:
        return await asyncio.wait_for(asyncio.to_thread(running_ingress_replicas), CHECK_TIMEOUT_S)
    except TimeoutError:
        return None


def running_ingress_replicas() -> int | None:
    """Running replicas of the ``nexus`` app's ingress; None when Serve cannot tell."""
    try:
        from ray import serve

        app = serve.status().applications.get(INGRESS_APP)
        deployment = app.deployments.get(INGRESS_DEPLOYMENT) if app is not None else None
        if deployment is None:
            return None
        return sum(
            n for state, n in deployment.replica_states.items() if str(getattr(state, "value", state)) == "RUNNING"
        )
    except Exception:  # no Serve here (in-process app) or the controller is away: unknown
        return None


async def readiness(runner: RunGateway, sessions: SessionGateway) -> tuple[dict[str, str], dict[str, int]]:
    """Each dependency's state ("ok" or what is wrong with it) and the hosts per pool."""
    run_hosts, session_hosts = await asyncio.gather(
        _check(runner.health()), _check(sessions.health()), return_exceptions=False
    )
    checks = {"serve": "ok"}  # this replica answered through the Serve ingress
    checks["ray"] = "ok" if not _unreachable(run_hosts) or not _unreachable(session_hosts) else "unreachable"
    checks["run_hosts"] = _pool_state(run_hosts)
    checks["session_hosts"] = _pool_state(session_hosts)
    stores = [h.get("store", "ok") for h in [*_hosts(run_hosts), *_hosts(session_hosts)]]
    failing = [s for s in stores if s != "ok"]
    checks["store"] = failing[0] if failing else ("ok" if stores else "unknown: no host answered")
    return checks, {"run": len(_hosts(run_hosts)), "session": len(_hosts(session_hosts))}


async def _check(call: Any) -> list[dict[str, Any]] | str:
    try:
        return await asyncio.wait_for(call, CHECK_TIMEOUT_S)  # type: ignore[no-any-return]
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_S} s"
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _hosts(result: list[dict[str, Any]] | str) -> list[dict[str, Any]]:
    return result if isinstance(result, list) else []


def _unreachable(result: list[dict[str, Any]] | str) -> bool:
    return isinstance(result, str) or all(h.get("error") for h in result)


def _pool_state(result: list[dict[str, Any]] | str) -> str:
    if isinstance(result, str):
        return result
    down = [h["host_id"] for h in result if h.get("error")]
    return "ok" if not down else f"{len(down)} of {len(result)} down ({', '.join(down)})"
