"""An Idempotency-Key whose first request failed before its run was created (a 429 for the
tenant's run limit, a 503 from the store): the key's retry runs the request, it does not
get a 404 for a run that never existed."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from nexus_ray import RateLimitedError
from nexus_ray.runtime.ids import new_run_id
from nexus_ray.runtime.run_service import RunService
from nexus_ray.store import Store
from nexus_ray.store.backends import SQLiteBackend
from nexus_ray.workflow import WorkflowBuilder


async def nap(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


def limited_service(store_path: Path | None) -> RunService:
    factory = (lambda: Store(SQLiteBackend(store_path))) if store_path else None
    workflows = {"nap": WorkflowBuilder().add_node(nap, "nap").build()}
    return RunService("h0", workflows, store_factory=factory, max_runs_per_tenant=1)


@pytest.mark.parametrize("durable", [True, False], ids=["store", "memory"])
@pytest.mark.parametrize("wait", [True, False], ids=["execute", "start"])
async def test_a_key_whose_first_request_was_refused_runs_the_retry(tmp_path: Path, durable: bool, wait: bool) -> None:
    svc = limited_service(tmp_path / "s.db" if durable else None)
    try:
        busy = asyncio.ensure_future(svc.execute("nap", {"nap": {"seconds": 0.3}}, new_run_id()))
        await asyncio.sleep(0.05)
        request = ("order-7", "digest-1", "nap", {"nap": {"seconds": 0.01}})
        first_id = new_run_id()
        with pytest.raises(RateLimitedError):  # the tenant's one run is going
            await svc.execute_idempotent(*request, first_id, wait)
        await busy
        retry_id = new_run_id()
        retried = await svc.execute_idempotent(*request, retry_id, wait)
        # With a store, the key's run, created now; in memory, the refused key was let go.
        run_id = first_id if durable else retry_id
        assert retried["run_id"] == run_id
        result = retried if wait else await svc.wait_for(run_id)
        assert result["status"] == "completed" and result["outputs"]["nap"]["result"] == 0.01
        again = await svc.execute_idempotent(*request, new_run_id(), True)
        assert again["run_id"] == run_id and again["status"] == "completed"
    finally:
        svc.close()


async def test_without_a_store_a_key_lives_as_long_as_its_run_s_result() -> None:
    """Keys were kept for ever without a store (memory grew with every key), while the run
    they named was forgotten after RESULT_TTL_S: a later repeat got a 404."""
    svc = limited_service(None)
    try:
        request = ("order-8", "digest-1", "nap", {"nap": {"seconds": 0.01}})
        first = await svc.execute_idempotent(*request, new_run_id(), True)
        assert (await svc.execute_idempotent(*request, new_run_id(), True))["run_id"] == first["run_id"]
        svc._forget(first["run_id"], svc._tasks[first["run_id"]])  # its result's time is up
        assert svc._keys == {} and svc._key_of_run == {}
        later = await svc.execute_idempotent(*request, new_run_id(), True)
        assert later["run_id"] != first["run_id"] and later["status"] == "completed"
    finally:
        svc.close()
