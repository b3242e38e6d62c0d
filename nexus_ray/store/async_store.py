"""Store calls from async code: each runs on one dedicated thread, in order, so the
event loop never blocks on the database."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .store import Store

T = TypeVar("T")


class AsyncStore:
    """Async facade of a :class:`Store` built by ``factory`` on the store thread."""

    def __init__(self, factory: Callable[[], Store]) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nexus-store")
        self._store: Store = self._executor.submit(factory).result()

    async def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """``await store.call("get_run", run_id)``: run ``Store.method`` on the store thread."""
        fn = functools.partial(getattr(self._store, method), *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def call_blocking(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """The same from synchronous code."""
        return self._executor.submit(getattr(self._store, method), *args, **kwargs).result()

    def close(self) -> None:
        """Close the connection and stop the thread."""
        self._executor.submit(self._store.close).result()
        self._executor.shutdown(wait=True)
