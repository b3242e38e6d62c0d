"""RunService (the RunHost's logic) in-process: batches reply after at most wait_s."""

from __future__ import annotations

import asyncio
import time

import pytest

from nexus_ray import NotFoundError, WorkflowNotFoundError
from nexus_ray.runtime.dispatch import RunRequest
from nexus_ray.runtime.run_host import RunService
from nexus_ray.workflow import WorkflowBuilder

from .helpers import double_plus_one


async def nap(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


def service() -> RunService:
    return RunService("h0", {"dpo": double_plus_one(), "nap": WorkflowBuilder().add_node(nap, "nap").build()})


async def test_batch_returns_fast_runs_and_marks_slow_ones_pending() -> None:
    svc = service()
    requests = [
        RunRequest("dpo", double_plus_one().resolve_inputs({"x": 1}), "r1"),
        RunRequest("nap", {"nap": {"seconds": 0.3}}, "r2"),
        RunRequest("missing", {}, "r3"),
    ]
    started = time.perf_counter()
    replies = await svc.execute_batch(requests, wait_s=0.05)
    assert time.perf_counter() - started < 0.2
    assert replies[0][0] == "ok" and replies[0][1]["outputs"]["add_one"]["result"]["value"] == 3
    assert replies[1] == ("pending", None)
    assert replies[2][0] == "error" and isinstance(replies[2][1], WorkflowNotFoundError)
    result = await svc.await_run("r2")
    assert result["status"] == "completed" and result["outputs"]["nap"]["result"] == 0.3
    with pytest.raises(NotFoundError):
        await svc.await_run("r2")  # claimed once


async def test_await_unknown_run() -> None:
    with pytest.raises(NotFoundError, match="not running"):
        await service().await_run("nope")
