"""Event subscriptions in a calling process (an ingress replica, a driver).

However many local subscribers follow one run or session, the process keeps one long poll
to the host that owns it and fans the events out locally; a subscriber whose cursor is
older than what arrived here reads the host directly until it catches up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any

from ..errors import InvalidRequestError
from ..workflow.events import RUN_TERMINAL, SESSION_TERMINAL
from .event_feed import EventFeed

# (id, after, timeout_s) -> (events after the cursor, whether the log has ended)
Fetch = Callable[[str, int, float], Awaitable[tuple[list[dict[str, Any]], bool]]]
POLL_S = 15.0  # a long poll's longest wait; also the SSE keep-alive interval


class _Topic:
    """One log followed from this process: its poller and how many subscribers it has."""

    def __init__(self) -> None:
        self.subscribers = 0
        self.poller: asyncio.Task[None] | None = None
        self.closed = False
        self.error: BaseException | None = None


class EventHub:
    """Subscriptions to the logs of one kind ("run" or "session") through ``fetch``."""

    def __init__(self, kind: str, fetch: Fetch, poll_s: float = POLL_S) -> None:
        self.kind, self.fetch, self.poll_s = kind, fetch, poll_s
        terminal = RUN_TERMINAL if kind == "run" else SESSION_TERMINAL
        self.feed = EventFeed(f"{kind}_id", lambda event: event["type"] in terminal, erase_on_end=kind == "session")
        self._topics: dict[str, _Topic] = {}

    async def subscribe(self, log_id: str, after: int = 0) -> AsyncGenerator[dict[str, Any] | None, None]:
        """Events of ``log_id`` after ``after``, in order, ending after the log's last
        event (a finished run, a session that is gone). Yields None when ``poll_s`` passed
        without an event (a chance to send a keep-alive). Raises NotFoundError for an
        unknown id."""
        if after < 0:
            raise InvalidRequestError(f"The event cursor must be >= 0, got {after}.", after=after)
        events, closed = await self.fetch(log_id, after, 0.0)  # validates the id, catches up
        for event in events:
            yield event
            after = event["seq"]
        if closed:
            return
        topic = self._join(log_id, after)
        try:
            async for item in self._follow(log_id, topic, after):
                yield item
        finally:
            self._leave(log_id, topic)

    async def _follow(self, log_id: str, topic: _Topic, after: int) -> AsyncIterator[dict[str, Any] | None]:
        while True:
            if topic.error is not None:
                raise topic.error
            batch = await self.feed.wait(log_id, after, self.poll_s, self._direct)
            if batch is None:
                return
            for event in batch.events:
                yield event
                after = event["seq"]
            if batch.closed and not batch.events:
                return
            if not batch.events and topic.error is None:
                yield None

    async def _direct(self, log_id: str, after: int) -> list[dict[str, Any]]:
        events, _ = await self.fetch(log_id, after, 0.0)
        return events

    def _join(self, log_id: str, after: int) -> _Topic:
        topic = self._topics.get(log_id)
        if topic is None:
            topic = self._topics[log_id] = _Topic()
            self.feed.track(log_id, after)
            topic.poller = asyncio.get_running_loop().create_task(self._poll(log_id, topic, after))
        topic.subscribers += 1
        return topic

    def _leave(self, log_id: str, topic: _Topic) -> None:
        topic.subscribers -= 1
        if topic.subscribers == 0 and self._topics.get(log_id) is topic:
            del self._topics[log_id]
            self.feed.forget(log_id)
            if topic.poller is not None:
                topic.poller.cancel()

    async def _poll(self, log_id: str, topic: _Topic, after: int) -> None:
        try:
            while True:
                events, closed = await self.fetch(log_id, after, self.poll_s)
                self.feed.publish(events)
                after = events[-1]["seq"] if events else after
                if closed:
                    break
        except Exception as exc:  # reaches every subscriber of the topic
            topic.error = exc
        topic.closed = True
        self.feed.wake(log_id)
