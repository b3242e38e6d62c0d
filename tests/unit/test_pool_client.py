"""PoolClient without Ray: it pickles without its dispatchers, and each event loop gets its
own (a dispatcher outliving its loop would never send again)."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

from nexus_ray.runtime.dispatch import RunRequest
from nexus_ray.runtime.pool import PoolClient


class FakeMethod:
    def remote(self, requests: list[RunRequest], wait_s: float) -> Any:
        async def reply() -> list[tuple[str, Any]]:
            return [("ok", {"run_id": r.run_id}) for r in requests]

        return reply()


class FakeHost:
    execute_batch = FakeMethod()


def test_each_event_loop_gets_its_own_dispatcher_and_pickling_drops_them() -> None:
    client = PoolClient({"h0": FakeHost()})
    seen = []

    async def one(run_id: str) -> dict[str, Any]:
        result = await client.execute("wf", {}, run_id)
        seen.append(client._dispatchers[asyncio.get_running_loop()]["h0"])
        return result

    assert asyncio.run(one("a")) == {"run_id": "a"}
    assert asyncio.run(one("b")) == {"run_id": "b"}  # a fresh loop works
    assert seen[0] is not seen[1]
    copy = pickle.loads(pickle.dumps(client))
    assert len(copy._dispatchers) == 0 and copy.ring.member_for("x") == "h0"
