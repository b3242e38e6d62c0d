"""CallBatcher and BatchTarget without Ray: calls that arrive while a batch is out are sent
together; slow calls are parked and claimed together in one streaming call; errors reach
their own caller only."""

from __future__ import annotations

import asyncio
import pickle
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import ray

from nexus_ray import InvalidRequestError, NotFoundError, RuntimeUnavailableError
from nexus_ray.runtime.batching import BatcherCache, BatchTarget, CallBatcher
from nexus_ray.runtime.errors import UNPICKLABLE, submit


class Target(BatchTarget):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []
        self.calls: list[str] = []

    async def double(self, x: int) -> int:
        return 2 * x

    async def nap(self, seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    async def missing(self, key: str) -> None:
        raise NotFoundError(f"no {key}")


class Method:
    """``handle.method.remote(*args)`` for an in-process target, like a Ray actor handle."""

    def __init__(self, target: Target, name: str) -> None:
        self.target, self.name = target, name

    def remote(self, *args: Any) -> Any:
        self.target.calls.append(self.name)
        if self.name == "call_batch":
            self.target.batches.append(len(args[0]))
        if self.name == "stream_claims":
            return refs(self.target.stream_claims(*args))
        return getattr(self.target, self.name)(*args)


async def refs(stream: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """Like Ray's ObjectRefGenerator: each item is an awaitable of the value yielded."""
    async for item in stream:
        future = asyncio.get_running_loop().create_future()
        future.set_result(item)
        yield future


class Handle:
    def __init__(self, target: Target) -> None:
        self.target = target

    def __getattr__(self, name: str) -> Method:
        return Method(self.target, name)


class PicklingMethod(Method):
    """Like Ray's: ``remote`` raises Ray's TypeError when an argument cannot be pickled."""

    def remote(self, *args: Any) -> Any:
        try:
            ray.cloudpickle.dumps(args)
        except Exception as exc:
            raise TypeError(f"{UNPICKLABLE} {args!r} for a task or actor Target.{self.name}:\n...") from exc
        return super().remote(*args)


class PicklingHandle(Handle):
    def __getattr__(self, name: str) -> Method:
        return PicklingMethod(self.target, name)


async def test_a_call_ray_cannot_pickle_gets_its_own_error_and_the_calls_sent_with_it_go_on() -> None:
    """Before, no call of such a batch was ever answered (a function turn holding a lock
    left its caller and every call batched with it waiting for ever)."""
    target = Target()
    batcher = CallBatcher(PicklingHandle(target))  # type: ignore[arg-type]
    first = asyncio.ensure_future(batcher.call("double", 1))  # goes alone; the others queue behind it
    lock = threading.Lock()
    rest = [batcher.call("double", 2), batcher.call("double", lock), batcher.call("double", 3)]
    replies = await asyncio.wait_for(asyncio.gather(*rest, return_exceptions=True), 5)
    assert await first == 2 and replies[0] == 4 and replies[2] == 6
    assert isinstance(replies[1], InvalidRequestError)
    assert str(replies[1]) == (
        "The arguments of double cannot be sent to its host: Ray cannot pickle them "
        "(cannot pickle '_thread.lock' object)."
    )
    assert target.batches == [1, 2]


def test_ray_s_error_for_an_argument_it_cannot_pickle_names_what_failed() -> None:
    lock = threading.Lock()
    args = (lambda state: {**state, "locked": lock.locked()},)
    with pytest.raises(InvalidRequestError) as refused:
        submit(PicklingHandle(Target()), "double", args)
    assert refused.value.http_status == 400 and str(refused.value) == (
        "The arguments of double cannot be sent to its host: Ray cannot pickle them "
        "(cannot pickle '_thread.lock' object)."
    )

    class Refuses:
        def remote(self, *args: Any) -> None:
            raise TypeError("remote() got an unexpected keyword argument")

    class Actor:
        double = Refuses()

    with pytest.raises(TypeError, match="unexpected keyword"):  # any other TypeError is left as it is
        submit(Actor(), "double", (1,))


async def test_concurrent_calls_are_coalesced_and_each_gets_its_own_value() -> None:
    target = Target()
    batcher = CallBatcher(Handle(target))  # type: ignore[arg-type]
    values = await asyncio.gather(*(batcher.call("double", i) for i in range(50)))
    assert values == [2 * i for i in range(50)]
    assert target.batches == [1, 49]  # the first goes at once, the rest wait for it together


async def test_a_slow_call_is_parked_and_does_not_hold_back_the_batch() -> None:
    target = Target()
    batcher = CallBatcher(Handle(target), wait_s=0.02)  # type: ignore[arg-type]
    started = time.perf_counter()
    slow = asyncio.ensure_future(batcher.call("nap", 0.3))
    fast = [asyncio.ensure_future(batcher.call("double", i)) for i in range(3)]
    assert await asyncio.gather(*fast) == [0, 2, 4]
    assert time.perf_counter() - started < 0.2
    assert await slow == 0.3
    assert target._parked == {}


async def test_slow_calls_of_one_batch_are_claimed_in_one_streaming_call_as_each_finishes() -> None:
    target = Target()
    batcher = CallBatcher(Handle(target), wait_s=0.02)  # type: ignore[arg-type]
    started = time.perf_counter()
    first = asyncio.ensure_future(batcher.call("double", 1))  # goes alone; the naps queue behind it
    naps = [asyncio.ensure_future(batcher.call("nap", s)) for s in (0.1, 0.4, 0.1)]
    assert await first == 2
    assert await naps[0] == 0.1 and time.perf_counter() - started < 0.3  # not held back by the 0.4 s one
    assert await asyncio.gather(*naps) == [0.1, 0.4, 0.1]
    assert target.batches == [1, 3]
    assert target.calls == ["call_batch", "call_batch", "stream_claims"]  # no call of its own per parked call
    assert target._parked == {}


class LosesReplies(Target):
    """A target whose stream ends early, as when Ray retries it on a restarted actor and
    drops items it had sent already."""

    async def stream_claims(self, claims: list[tuple[str, tuple[Any, ...]]]) -> AsyncIterator[Any]:
        async for group in super().stream_claims(claims):
            yield [reply for reply in group if reply[0] != 1]

    async def claim(self, token: int) -> Any:
        return await self._parked[token]  # repeatable, like RunHost.await_run


async def test_a_claim_whose_reply_the_stream_lost_is_made_again_on_its_own() -> None:
    target = LosesReplies()
    batcher = CallBatcher(Handle(target), wait_s=0.01)  # type: ignore[arg-type]
    first = asyncio.ensure_future(batcher.call("double", 1))
    naps = asyncio.gather(*(batcher.call("nap", s) for s in (0.05, 0.06, 0.07)))
    assert await first == 2 and await naps == [0.05, 0.06, 0.07]
    assert target.calls == ["call_batch", "call_batch", "stream_claims", "claim"]


async def test_only_claims_can_be_streamed_and_a_wrong_one_fails_before_any_claim_starts() -> None:
    target = Target()
    claim = target.park(asyncio.ensure_future(target.nap(0.01)), ("nap", (0.01,)))
    stream = target.stream_claims([claim, ("double", (1,))])
    with pytest.raises(InvalidRequestError, match=r"Only 'claim' can be streamed here, not \['double'\]"):
        await stream.__anext__()
    assert claim == ("claim", (1,)) and 1 in target._parked  # the good claim was not taken either


async def test_an_error_reaches_only_its_caller() -> None:
    batcher = CallBatcher(Handle(Target()))  # type: ignore[arg-type]
    results = await asyncio.gather(
        batcher.call("double", 1), batcher.call("missing", "k"), batcher.call("double", 2), return_exceptions=True
    )
    assert results[0] == 2 and results[2] == 4
    assert isinstance(results[1], NotFoundError) and str(results[1]) == "no k"


async def test_claiming_a_call_lost_with_a_restart_says_so() -> None:
    with pytest.raises(RuntimeUnavailableError, match="restarted while the call was in flight"):
        await Target().claim(7)


def test_each_event_loop_gets_its_own_batcher_and_pickling_drops_them() -> None:
    cache = BatcherCache(wait_s=0.01)
    handle = Handle(Target())
    seen = []

    async def one() -> int:
        batcher = cache.get("h0", handle)  # type: ignore[arg-type]
        seen.append(batcher)
        assert cache.get("h0", handle) is batcher  # type: ignore[arg-type]
        return await batcher.call("double", 3)  # type: ignore[no-any-return]

    assert asyncio.run(one()) == 6 and asyncio.run(one()) == 6  # a fresh loop works
    assert seen[0] is not seen[1]
    copy = pickle.loads(pickle.dumps(cache))
    assert copy.options == {"wait_s": 0.01} and len(copy._by_loop) == 0


class BreaksStream(LosesReplies):
    """A target whose claim stream fails after its first group with an error of Ray's
    object layer, neither a task's nor an actor's (an object lost with its node)."""

    async def stream_claims(self, claims: list[tuple[str, tuple[Any, ...]]]) -> AsyncIterator[Any]:
        async for group in BatchTarget.stream_claims(self, claims):
            yield group
            raise ray.exceptions.RaySystemError("the stream's object was lost")


async def test_parked_calls_whose_claim_stream_broke_are_claimed_one_by_one() -> None:
    """Before, the calls not yet answered when the stream broke were never answered."""
    target = BreaksStream()
    batcher = CallBatcher(Handle(target), wait_s=0.01)  # type: ignore[arg-type]
    first = asyncio.ensure_future(batcher.call("double", 1))
    naps = asyncio.gather(*(batcher.call("nap", s) for s in (0.05, 0.1, 0.15)))
    assert await first == 2 and await asyncio.wait_for(naps, 5) == [0.05, 0.1, 0.15]
    assert target.calls == ["call_batch", "call_batch", "stream_claims", "claim", "claim"]
