"""A host's event loop blocked by an async node that calls blocking code is reported,
naming the run, the node and the app's line that blocks it."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from nexus_ray.runtime.loop_watch import LoopWatch
from nexus_ray.workflow import WorkflowBuilder, WorkflowEngine


async def fetch(url: str) -> str:
    time.sleep(0.6)  # a blocking call in async code (requests.get, say): the mistake reported
    return url


async def test_a_blocked_loop_is_reported_once_naming_the_node_and_the_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "nexus_ray.runtime")
    watch = LoopWatch(asyncio.get_running_loop(), "h0", blocked_s=0.2)
    watch.start()
    await asyncio.sleep(0.1)
    wf = WorkflowBuilder().add_node(fetch, "fetch").build()
    outcome = await WorkflowEngine().execute(wf, wf.resolve_inputs({"url": "u"}), run_id="r-1")
    await asyncio.sleep(0.3)
    watch.stop()
    assert outcome.status == "completed"
    assert watch.stalls == 1
    blocked, ran_again = [r.getMessage() for r in caplog.records]
    assert blocked.startswith("h0: its event loop has been blocked for ")
    assert "by run r-1 node 'fetch' at " in blocked and f"{__file__}:" in blocked and "in fetch" in blocked
    assert ran_again.startswith("h0: its event loop ran again after 0.")


async def test_a_loop_that_keeps_ticking_is_not_reported(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "nexus_ray.runtime")
    watch = LoopWatch(asyncio.get_running_loop(), "h0", blocked_s=0.2)
    watch.start()
    for _ in range(10):
        time.sleep(0.05)  # short blocking stretches, well under the threshold
        await asyncio.sleep(0.01)
    watch.stop()
    assert watch.stalls == 0 and caplog.records == []
