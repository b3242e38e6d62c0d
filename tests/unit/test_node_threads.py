"""The node thread pool: synchronous nodes that hang after being given up on (timed out,
cancelled) do not use up the threads every other run on the host needs."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from nexus_ray import NodePolicy
from nexus_ray.runtime.node_threads import NodeThreads
from nexus_ray.runtime.run_service import RunService
from nexus_ray.store import Store
from nexus_ray.store.backends import SQLiteBackend
from nexus_ray.workflow import WorkflowBuilder

from .helpers import double_plus_one

RELEASE = threading.Event()


@pytest.fixture(autouse=True)
def release_hung_code() -> object:
    RELEASE.clear()
    yield
    RELEASE.set()


def hang(x: int) -> int:
    """A call without a timeout to a host that never answers (until the test ends)."""
    RELEASE.wait(30)
    return x


async def give_up_on(pool: NodeThreads, fn: object, timeout_s: float = 0.05) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(pool, fn), timeout_s)


async def test_results_and_errors_come_back_and_at_most_size_threads_run_at_once() -> None:
    pool, running, most = NodeThreads(3), [0], [0]
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        if i == 7:
            raise ValueError("seven")
        return i * 2

    loop = asyncio.get_running_loop()
    results = await asyncio.gather(*(loop.run_in_executor(pool, work, i) for i in range(10)), return_exceptions=True)
    assert results[:7] == [0, 2, 4, 6, 8, 10, 12] and isinstance(results[7], ValueError)
    assert most[0] == 3 and pool.left_behind == 0
    pool.shutdown()


async def test_a_thread_held_by_code_given_up_on_is_replaced_and_counts_again_when_it_returns() -> None:
    pool = NodeThreads(2)
    await give_up_on(pool, lambda: hang(1))
    await give_up_on(pool, lambda: hang(2))
    assert pool.left_behind == 2
    started = time.perf_counter()
    assert await asyncio.get_running_loop().run_in_executor(pool, lambda: 5) == 5  # a fixed pool waits for ever
    assert time.perf_counter() - started < 1
    RELEASE.set()
    await asyncio.sleep(0.2)
    assert pool.left_behind == 0
    assert len(pool._counts.threads) <= 2  # the threads that came back and were not needed ended
    pool.shutdown()


async def test_work_cancelled_before_it_started_never_runs() -> None:
    pool, ran = NodeThreads(1), []
    loop = asyncio.get_running_loop()
    busy = loop.run_in_executor(pool, time.sleep, 0.2)
    queued = loop.run_in_executor(pool, ran.append, "queued")
    queued.cancel()
    await busy
    await asyncio.sleep(0.05)
    assert ran == [] and pool.left_behind == 0
    pool.shutdown()


async def test_threads_added_for_hung_code_are_capped_and_the_cap_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    pool = NodeThreads(1, spare=2)
    for i in range(3):  # the third hangs in the last thread the cap allows
        await give_up_on(pool, lambda i=i: hang(i))
    assert pool.left_behind == 3
    waiting = asyncio.get_running_loop().run_in_executor(pool, lambda: "ran")
    await asyncio.sleep(0.2)
    assert not waiting.done()
    assert "3 node threads are held by synchronous nodes that timed out or were cancelled" in caplog.text
    RELEASE.set()  # a hung thread returns and takes the waiting work
    assert await asyncio.wait_for(waiting, 2) == "ran"
    pool.shutdown()


def test_shutdown_does_not_wait_for_code_given_up_on() -> None:
    async def main(pool: NodeThreads) -> None:
        await give_up_on(pool, lambda: hang(1))

    pool = NodeThreads(2)
    asyncio.run(main(pool))
    started = time.perf_counter()
    pool.shutdown(wait=True)
    assert time.perf_counter() - started < 1
    assert all(thread.daemon for thread in pool._counts.threads)  # never holds up the process's exit
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(print)


async def test_a_host_whose_nodes_timed_out_in_hung_calls_still_runs_other_workflows(tmp_path: Path) -> None:
    hanging = WorkflowBuilder().add_node(hang, "h", policy=NodePolicy(timeout_s=0.05, retries=1, backoff_s=0))
    svc = RunService(
        "h0",
        {"hang": hanging.build(), "dpo": double_plus_one()},
        node_threads=2,
        store_factory=lambda: Store(SQLiteBackend(tmp_path / "s.db")),
    )
    for i in range(3):  # 6 attempts, each holding a thread: 3 times the pool
        assert (await svc.execute("hang", {"h": {"x": i}}, f"hang-{i}"))["error"]["type"] == "NodeTimeoutError"
    result = await asyncio.wait_for(svc.execute("dpo", {"double": {"x": 4}}, "dpo-1"), 5)
    assert result["status"] == "completed" and result["outputs"]["add_one"] == {"result": {"value": 9}}
    assert 'nexus_node_threads_left_behind{host="h0"} 6.0' in svc.metrics_text()
    svc.close()


def test_shutdown_can_cancel_the_work_still_queued() -> None:
    pool, ran = NodeThreads(1), []
    busy = pool.submit(time.sleep, 0.2)
    time.sleep(0.05)  # the thread took it
    queued = [pool.submit(ran.append, n) for n in range(3)]
    pool.shutdown(wait=True, cancel_futures=True)
    assert busy.result() is None and all(f.cancelled() for f in queued) and ran == []
