"""Retries with backoff, retry_on, per-node timeouts, and the run-level timeout."""

from __future__ import annotations

import asyncio
import math
import re
import time
from pathlib import Path
from typing import Any

import pytest

from nexus_ray import WorkflowError
from nexus_ray.runtime.run_service import RunService
from nexus_ray.store import Store
from nexus_ray.store.backends import SQLiteBackend
from nexus_ray.workflow import EngineHooks, InputField, Node, NodeContext, NodePolicy, WorkflowBuilder

from .helpers import run


class Retries(EngineHooks):
    def __init__(self) -> None:
        self.seen: list[tuple[str, int, str, float]] = []

    async def node_retrying(self, node_id: str, attempt: int, error: dict[str, Any], delay_s: float) -> None:
        self.seen.append((node_id, attempt, error["type"], delay_s))


def flaky_node(failures: int, exc: type[Exception] = ConnectionError) -> Any:
    calls: list[str] = []

    def flaky(ctx_key: str = "") -> int:
        calls.append(ctx_key)
        if len(calls) <= failures:
            raise exc(f"failure {len(calls)}")
        return len(calls)

    return flaky, calls


def test_retries_until_success_with_hooks_and_backoff() -> None:
    flaky, calls = flaky_node(2)
    wf = WorkflowBuilder().add_node(flaky, "f", policy=NodePolicy(retries=3, backoff_s=0.01)).build()
    hooks = Retries()
    outcome = run(wf, {}, hooks=hooks)
    assert outcome.status == "completed" and outcome.outputs["f"] == {"result": 3}
    assert [(n, a, t) for n, a, t, _ in hooks.seen] == [("f", 1, "ConnectionError"), ("f", 2, "ConnectionError")]
    assert 0.005 <= hooks.seen[0][3] <= 0.01 and 0.01 <= hooks.seen[1][3] <= 0.02


def test_retry_on_filters_and_exhaustion_is_reported() -> None:
    flaky, calls = flaky_node(5, ValueError)
    wf = WorkflowBuilder().add_node(flaky, "f", policy=NodePolicy(retries=3, retry_on=("ConnectionError",))).build()
    outcome = run(wf, {})
    assert outcome.status == "failed" and len(calls) == 1  # ValueError is not retried
    flaky, calls = flaky_node(5)
    wf = WorkflowBuilder().add_node(flaky, "f", policy=NodePolicy(retries=1, backoff_s=0)).build()
    outcome = run(wf, {})
    assert len(calls) == 2 and outcome.error["message"] == "failure 2 (after 2 attempts)"


def test_node_timeout_and_retrying_a_timeout() -> None:
    attempts: list[int] = []

    class Sleepy(Node):
        def output_ports(self) -> frozenset[str]:
            return frozenset({"ok"})

        async def run(self, inputs: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
            attempts.append(ctx.attempt)
            assert ctx.idempotency_key == "test:s"
            await asyncio.sleep(5 if ctx.attempt == 1 else 0)
            return {"ok": True}

        def declare_inputs(self) -> dict[str, InputField]:
            return {}

    started = time.perf_counter()
    wf = WorkflowBuilder().add_node(Sleepy, "s", policy=NodePolicy(timeout_s=0.1)).build()
    outcome = run(wf, {})
    assert outcome.error == {"node": "s", "type": "NodeTimeoutError", "message": "node 's' timed out after 0.1 s"}
    assert time.perf_counter() - started < 1
    attempts.clear()
    retried = NodePolicy(timeout_s=0.1, retries=1, retry_on=(TimeoutError,), backoff_s=0)
    outcome = run(WorkflowBuilder().add_node(Sleepy, "s", policy=retried).build(), {})
    assert outcome.status == "completed" and attempts == [1, 2]


def test_policy_validation() -> None:
    with pytest.raises(WorkflowError):
        NodePolicy(retries=-1)
    with pytest.raises(WorkflowError):
        NodePolicy(timeout_s=0)
    with pytest.raises(WorkflowError, match="must be a NodePolicy"):
        WorkflowBuilder().add_node("PythonCodeNode", "n", {"code": "result = 1"}, policy={"retries": 1})  # type: ignore[arg-type]
    with pytest.raises(WorkflowError, match=r"timeout_s must be a number of seconds \(more than 0\), got -1"):
        WorkflowBuilder(timeout_s=-1).add_node("PythonCodeNode", "n", {"code": "result = 1"}).build()


@pytest.mark.parametrize("timeout_s", [0, -1, math.nan, True, "5"])
def test_a_timeout_is_a_number_of_seconds_above_0(timeout_s: Any) -> None:
    with pytest.raises(WorkflowError, match="timeout_s must be a number of seconds"):
        NodePolicy(timeout_s=timeout_s)
    with pytest.raises(WorkflowError, match="timeout_s must be a number of seconds"):
        WorkflowBuilder(timeout_s=timeout_s).add_node("PythonCodeNode", "n", {"code": "result = 1"}).build()


@pytest.mark.parametrize(
    ("policy", "named"),
    [
        (dict(retries=1.5), "retries must be a whole number"),
        (dict(retries=True), "retries must be a whole number"),
        (dict(backoff_s=math.nan), "backoff_s must be a number of seconds"),
        (dict(max_backoff_s=-1), "max_backoff_s must be a number of seconds"),
        (dict(retry_on=(5,)), "retry_on holds 5"),
        (dict(retry_on=("requests.ConnectionError",)), "retry_on holds 'requests.ConnectionError'"),
        (dict(retry_on=(dict,)), "retry_on holds <class 'dict'>"),
        (dict(retry_on=None), "retry_on must be exception classes or names"),
    ],
)
def test_a_policy_that_could_never_do_what_it_says_is_refused(policy: dict[str, Any], named: str) -> None:
    with pytest.raises(WorkflowError, match=re.escape(named)):
        NodePolicy(**policy)


def test_a_lone_exception_name_or_class_is_one_kind_not_its_letters() -> None:
    """``retry_on="ConnectionError"`` read as a tuple of letters would never match."""
    assert NodePolicy(retry_on="ConnectionError").retry_on == ("ConnectionError",)  # type: ignore[arg-type]
    by_class = NodePolicy(retries=1, retry_on=ConnectionError)  # type: ignore[arg-type]
    assert by_class.should_retry(ConnectionRefusedError(), 1) and not by_class.should_retry(ValueError(), 1)
    by_name = NodePolicy(retries=1, retry_on="OSError")  # type: ignore[arg-type]
    assert by_name.should_retry(ConnectionRefusedError(), 1) and not by_name.should_retry(ValueError(), 1)
    assert NodePolicy(timeout_s=math.inf, backoff_s=0).timeout_s == math.inf  # no limit, and no wait


def test_backoff_is_capped() -> None:
    policy = NodePolicy(backoff_s=1, max_backoff_s=4)
    assert all(2 <= policy.delay_s(10) <= 4 for _ in range(50))
    many = NodePolicy(retries=10**6, backoff_s=0.001, max_backoff_s=0.01)  # "retry until it is back"
    assert all(0.005 <= many.delay_s(attempt) <= 0.01 for attempt in (1_025, 5_000, 10**6))


async def nap(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


async def test_run_level_timeout_fails_the_run(tmp_path: Path) -> None:
    wf = WorkflowBuilder(timeout_s=0.2).add_node(nap, "nap").build()
    svc = RunService("h0", {"nap": wf}, store_factory=lambda: Store(SQLiteBackend(tmp_path / "s.db")))
    started = time.perf_counter()
    result = await svc.execute("nap", {"nap": {"seconds": 5}}, "r1")
    assert time.perf_counter() - started < 1
    assert result["status"] == "failed"
    assert result["error"] == {
        "node": "",
        "type": "RunTimeoutError",
        "message": "the run exceeded its timeout of 0.2 s",
    }
    assert (await svc.get_run("r1"))["status"] == "failed"
    svc.close()


@pytest.mark.parametrize(("age_s", "left_s"), [(0.7, 0.3), (5.0, 0.0)])
async def test_a_resumed_run_keeps_the_timeout_it_started_with_counted_from_its_creation(
    tmp_path: Path, age_s: float, left_s: float
) -> None:
    """A run whose host died is resumed with what is left of its timeout, not a new one:
    a run with a 1 s timeout created ``age_s`` ago fails ~``left_s`` after its adoption."""
    wf = WorkflowBuilder(timeout_s=1.0).add_node(nap, "nap").build()
    crashed = Store(SQLiteBackend(tmp_path / "s.db"))  # what a host that died mid-run left behind
    crashed.create_run("r1", "nap", {"nap": {"seconds": 5}}, owner="dead-host", lease_s=0.01)
    crashed.backend.execute("UPDATE runs SET created_at = created_at - ?", (age_s,))
    crashed.backend.commit()
    crashed.close()
    await asyncio.sleep(0.02)
    svc = RunService("h0", {"nap": wf}, store_factory=lambda: Store(SQLiteBackend(tmp_path / "s.db")))
    started = time.perf_counter()
    assert await svc.maintain_once() == ["r1"]
    result = await svc.wait_for("r1")
    took = time.perf_counter() - started
    assert result["status"] == "failed" and result["error"]["type"] == "RunTimeoutError", result
    assert left_s - 0.1 < took < left_s + 0.5  # not the full 1 s again, and not the node's 5 s
    svc.close()
