"""PoolClient without Ray: runs go to their host's batcher; it pickles without them."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

from nexus_ray.runtime.pool import PoolClient


class FakeMethod:
    def remote(self, calls: list[tuple[str, tuple[Any, ...]]], wait_s: float) -> Any:
        async def reply() -> list[tuple[str, Any]]:
            return [("ok", {"method": method, "run_id": args[2]}) for method, args in calls]

        return reply()


class FakeHost:
    call_batch = FakeMethod()


def test_runs_are_sent_batched_to_their_host_and_pickling_drops_batchers() -> None:
    client = PoolClient({"h0": FakeHost()})  # type: ignore[dict-item]

    async def one(run_id: str) -> dict[str, Any]:
        return await client.execute("wf", {}, run_id)

    assert asyncio.run(one("a")) == {"method": "execute", "run_id": "a"}
    assert asyncio.run(one("b")) == {"method": "execute", "run_id": "b"}
    copy = pickle.loads(pickle.dumps(client))
    assert len(copy.batchers._by_loop) == 0 and copy.ring.member_for("x") == "h0"
