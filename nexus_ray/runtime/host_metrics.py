"""What a host counts for ``/metrics`` (runs, node durations, sessions, events delivered),
in its own Prometheus registry; the ingress merges every host's text at scrape time."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

NODE_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0)


class RunHostMetrics:
    """Runs by workflow and final status, node durations, runs in flight, events delivered."""

    def __init__(self, host_id: str) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        labels = {"host": host_id}
        self.runs = Counter(
            "nexus_runs", "Finished runs by workflow and status.", ["workflow", "status"], registry=self.registry
        ).labels
        self.nodes = Histogram(
            "nexus_node_duration_seconds",
            "Node execution time by workflow and node.",
            ["workflow", "node"],
            buckets=NODE_BUCKETS,
            registry=self.registry,
        ).labels
        self.active = Gauge("nexus_runs_active", "Runs executing on a host.", ["host"], registry=self.registry)
        self.active_for_host = self.active.labels(**labels)
        self.delivered = Counter(
            "nexus_run_events_delivered", "Run events sent to subscribers.", ["host"], registry=self.registry
        ).labels(**labels)
        self.left_behind = Gauge(
            "nexus_node_threads_left_behind",
            "Threads still running synchronous node code that timed out or was cancelled.",
            ["host"],
            registry=self.registry,
        ).labels(**labels)

    def run_finished(self, result: dict[str, object]) -> None:
        """Count a finished run and its nodes' durations."""
        workflow = str(result["workflow"])
        self.runs(workflow, str(result["status"])).inc()
        nodes: dict[str, Any] = result.get("nodes") or {}  # type: ignore[assignment]
        for node_id, record in nodes.items():
            duration_ms = record.get("duration_ms")
            if duration_ms is not None:
                self.nodes(workflow, node_id).observe(duration_ms / 1000)

    def text(self, active_runs: int, threads_left_behind: int = 0) -> str:
        """The registry in Prometheus text format."""
        self.active_for_host.set(active_runs)
        self.left_behind.set(threads_left_behind)
        return generate_latest(self.registry).decode()


class SessionHostMetrics:
    """Sessions in memory and session events delivered."""

    def __init__(self, host_id: str) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.active = Gauge(
            "nexus_sessions_active", "Sessions in a host's memory.", ["host"], registry=self.registry
        ).labels(host=host_id)
        self.delivered = Counter(
            "nexus_session_events_delivered", "Session events sent to subscribers.", ["host"], registry=self.registry
        ).labels(host=host_id)

    def text(self, active_sessions: int) -> str:
        """The registry in Prometheus text format."""
        self.active.set(active_sessions)
        return generate_latest(self.registry).decode()


async def check_store(store: Any, timeout_s: float = 2.0) -> str:
    """ "ok", or what is wrong with the store (an AsyncStore; None: not durable, ok)."""
    if store is None:
        return "ok"
    try:
        await asyncio.wait_for(store.call("ping"), timeout_s)
    except TimeoutError:
        return f"store: no answer within {timeout_s} s"
    except Exception as exc:
        return f"store: {type(exc).__name__}: {str(exc).strip()}"
    return "ok"


class ProcessCpu:
    """This process's CPU use (% of one core) since the previous reading."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first reading only starts the interval

    def percent(self) -> float:
        """CPU use since the last call, in % of one core."""
        return float(self._process.cpu_percent(None))
