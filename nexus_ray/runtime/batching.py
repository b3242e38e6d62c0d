"""Coalesce concurrent calls to one actor into batched actor calls.

One Ray actor call costs ~0.6-1 ms of CPU between caller and actor on this machine, which
caps one caller near 1,000 calls/s. Calls that arrive while a batch is out are sent
together when it returns, so the cost is paid per batch, not per call. A batch replies
after at most ``wait_s``, so a slow call never holds back the fast ones batched with it;
the calls still going by then are claimed together, in one streaming actor call that
yields their replies a group at a time as they finish. (Claimed with one call each,
durable runs here fell from 1,372 req/s at 32 concurrent requests to 886 at 128;
claimed together they reach 1,471 and 1,540-1,680.)
"""

from __future__ import annotations

import asyncio
import itertools
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ray.actor import ActorHandle
from ray.exceptions import RayActorError, RayTaskError

from ..errors import InvalidRequestError, RuntimeUnavailableError
from .errors import unsendable_calls

OK, ERROR, PENDING = "ok", "error", "pending"
Call = tuple[str, tuple[Any, ...]]


class CallBatcher:
    """Sends ``method(*args)`` calls to one actor exposing :class:`BatchTarget`'s
    ``call_batch``/``claim``: at once while fewer than ``max_inflight`` batches are out,
    otherwise queued and sent together (up to ``max_batch``)."""

    def __init__(
        self, handle: ActorHandle, *, max_inflight: int = 1, max_batch: int = 256, wait_s: float = 0.05
    ) -> None:
        self.handle = handle
        self.max_inflight, self.max_batch, self.wait_s = max_inflight, max_batch, wait_s
        self._queue: list[tuple[Call, asyncio.Future[Any]]] = []
        self._inflight = 0

    async def call(self, method: str, *args: Any) -> Any:
        """``method(*args)`` on the actor; raises what it raised, or Ray's error when the
        call itself failed (see ``translate_ray_error``)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(((method, args), future))
        if self._inflight < self.max_inflight:
            self._send_next()
        return await future

    def _send_next(self) -> None:
        batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
        self._inflight += 1
        asyncio.get_running_loop().create_task(self._send(batch))

    async def _send(self, batch: list[tuple[Call, asyncio.Future[Any]]]) -> None:
        try:
            replies = await self.handle.call_batch.remote([c for c, _ in batch], self.wait_s)
        except (RayTaskError, RayActorError) as exc:  # the caller translates (it may retry)
            for _, future in batch:
                settle(future, error=exc)
        except Exception as exc:  # Ray could not send it: an argument it cannot pickle
            self._drop_unsendable(batch, exc)
        else:
            parked = []
            for (_, future), (kind, value) in zip(batch, replies, strict=True):
                if kind == PENDING:
                    parked.append((value, future))
                else:
                    _settle_reply(future, kind, value)
            if len(parked) == 1:
                asyncio.get_running_loop().create_task(self._claim(*parked[0]))
            elif parked:
                asyncio.get_running_loop().create_task(self._claim_all(parked))
        finally:
            self._inflight -= 1
            if self._queue:
                self._send_next()

    def _drop_unsendable(self, batch: list[tuple[Call, asyncio.Future[Any]]], exc: Exception) -> None:
        """Answer the calls of ``batch`` whose arguments Ray cannot pickle with that mistake,
        and queue the others again. Before, no call of such a batch was ever answered: a
        function turn holding a lock left its caller, and the calls sent with it, waiting
        for ever."""
        errors = unsendable_calls([call for call, _ in batch])
        if not any(errors):  # not the arguments: every call gets what Ray raised
            for _, future in batch:
                settle(future, error=exc)
            return
        for (_, future), error in zip(batch, errors, strict=True):
            if error is not None:
                settle(future, error=error)
        self._queue[:0] = [item for item, error in zip(batch, errors, strict=True) if error is None]

    async def _claim_all(self, parked: list[tuple[Call, asyncio.Future[Any]]]) -> None:
        """Claim parked calls in one streaming call; a claim whose reply was lost when the
        actor restarted meanwhile is made again on its own (claims are safe to repeat)."""
        waiting = dict(enumerate(parked))
        try:
            async for ref in self.handle.stream_claims.remote([claim for claim, _ in parked]):
                for index, kind, value in await ref:
                    _settle_reply(waiting.pop(index)[1], kind, value)
        except (RayTaskError, RayActorError) as exc:
            for _, future in waiting.values():
                settle(future, error=exc)
            waiting.clear()
        except Exception:  # the stream itself broke (a lost object, Ray's own failure): claim the rest one by one
            pass  # before, they were never answered
        await asyncio.gather(*(self._claim(claim, future) for claim, future in waiting.values()))

    async def _claim(self, claim: Call, future: asyncio.Future[Any]) -> None:
        method, args = claim
        try:
            settle(future, result=await getattr(self.handle, method).remote(*args))
        except Exception as exc:  # Ray's errors, for the caller to translate
            settle(future, error=exc)


class BatcherCache:
    """One :class:`CallBatcher` per (event loop, actor key): batchers hold futures of one
    loop and are dropped with it (one outliving its loop would never send again)."""

    def __init__(self, **options: Any) -> None:
        self.options = options
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, CallBatcher]]
        self._by_loop = weakref.WeakKeyDictionary()
        self._last: tuple[weakref.ref[asyncio.AbstractEventLoop], dict[str, CallBatcher]] | None = None

    def get(self, key: str, handle: ActorHandle) -> CallBatcher:
        """The batcher of ``key`` for the running loop."""
        loop = asyncio.get_running_loop()
        if self._last is not None and self._last[0]() is loop:  # the common case, cheaply
            per_loop = self._last[1]
        else:
            per_loop = self._by_loop.setdefault(loop, {})
            self._last = (weakref.ref(loop), per_loop)
        batcher = per_loop.get(key)
        if batcher is None or batcher.handle is not handle:
            batcher = per_loop[key] = CallBatcher(handle, **self.options)
        return batcher

    def forget(self, key: str) -> None:
        """Drop the batchers of ``key`` (calls they hold go on)."""
        for per_loop in list(self._by_loop.values()):
            per_loop.pop(key, None)

    def __getstate__(self) -> dict[str, Any]:
        return {"options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["options"])  # type: ignore[misc]


class BatchTarget:
    """The actor side: runs a batch's calls concurrently and parks slow ones for their
    claim (the method named ``CLAIM``, called alone or streamed by ``stream_claims``)."""

    CLAIM = "claim"

    def __init__(self) -> None:
        self._parked: dict[int, asyncio.Task[Any]] = {}
        self._tokens = itertools.count(1)

    def batch_method(self, method: str) -> Callable[..., Awaitable[Any]]:
        """The coroutine function a batched ``method`` names (override to restrict)."""
        return getattr(self, method)  # type: ignore[no-any-return]

    async def call_batch(self, calls: list[Call], wait_s: float) -> list[tuple[str, Any]]:
        """Start every call; after at most ``wait_s`` reply per call with ``(OK, value)``,
        ``(ERROR, exc)`` or ``(PENDING, (claim_method, claim_args))`` to call for the value."""
        tasks = [asyncio.ensure_future(self.batch_method(method)(*args)) for method, args in calls]
        pending = [t for t in tasks if not t.done()]
        if pending:
            await asyncio.wait(pending, timeout=wait_s)
        return [self._reply(task, call) for task, call in zip(tasks, calls, strict=True)]

    async def stream_claims(self, claims: list[Call]) -> AsyncIterator[list[tuple[int, str, Any]]]:
        """Claim parked calls; yield ``(index, OK, value)`` or ``(index, ERROR, exc)`` for
        those that finished, a group at a time, until all have (a streaming actor call)."""
        wrong = sorted({method for method, _ in claims if method != self.CLAIM})
        if wrong:  # refused before any claim starts
            raise InvalidRequestError(f"Only {self.CLAIM!r} can be streamed here, not {wrong}.")
        claim = getattr(self, self.CLAIM)
        index = {asyncio.ensure_future(claim(*args)): i for i, (_, args) in enumerate(claims)}
        pending = set(index)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            yield [(index[task], *_outcome(task)) for task in done]

    def _reply(self, task: asyncio.Task[Any], call: Call) -> tuple[str, Any]:
        if not task.done():
            return PENDING, self.park(task, call)
        return _outcome(task)

    def park(self, task: asyncio.Task[Any], call: Call) -> Call:
        """Keep a slow call's task; the call that claims its value (override where the
        value can be found again after the actor restarts)."""
        token = next(self._tokens)
        self._parked[token] = task
        return self.CLAIM, (token,)

    async def claim(self, token: int) -> Any:
        """The value of a parked call (raises what it raised)."""
        task = self._parked.pop(token, None)
        if task is None:  # the actor restarted: the call's task died with it
            raise RuntimeUnavailableError("The host restarted while the call was in flight; retry it.")
        return await task


def _outcome(task: asyncio.Future[Any]) -> tuple[str, Any]:
    if task.cancelled():
        return ERROR, RuntimeUnavailableError("The call was cancelled on the host; retry it.")
    exc = task.exception()
    return (ERROR, exc) if exc is not None else (OK, task.result())


def settle(future: asyncio.Future[Any], *, result: Any = None, error: BaseException | None = None) -> None:
    """Resolve ``future`` unless its caller went away (request cancelled)."""
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _settle_reply(future: asyncio.Future[Any], kind: str, value: Any) -> None:
    """Settle ``future`` with an ``(OK, result)`` or ``(ERROR, exception)`` reply."""
    if kind == ERROR:
        settle(future, error=value)
    else:
        settle(future, result=value)


async def ask_each(hosts: dict[str, ActorHandle], method: str, timeout_s: float = 2.0) -> list[Any]:
    """``method()`` on every host at once; a host that fails or does not answer in time
    gives ``{"host_id", "error"}`` instead."""

    async def one(host_id: str, handle: ActorHandle) -> Any:
        try:
            return await asyncio.wait_for(getattr(handle, method).remote(), timeout_s)
        except TimeoutError:
            return {"host_id": host_id, "error": f"no answer within {timeout_s} s"}
        except (RayTaskError, RayActorError) as exc:
            return {"host_id": host_id, "error": f"{type(exc).__name__}: {str(exc).strip()[:200]}"}

    return list(await asyncio.gather(*(one(h, handle) for h, handle in hosts.items())))
