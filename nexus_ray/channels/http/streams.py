"""Event streams over HTTP: SSE for runs and sessions (resumable with Last-Event-ID), and
WebSockets that run workflows and follow sessions."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

import pydantic_core
from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import Response

from ...errors import InvalidRequestError, NexusError
from ...registry import RegisteredWorkflow, not_found
from ...runtime.ids import new_run_id
from ...runtime.subscriptions import EventHub, Fetch
from .gateway import RunGateway
from .problems import problem_doc
from .sessions import SessionGateway

KEEP_ALIVE_S = 15.0
_SSE_DOC = {
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
    "description": "Server-sent events: `id:` is the event's sequence number, `event:` its type, "
    "`data:` the event as JSON. Resume with `Last-Event-ID` or `?after=N`. With `?follow=false`: "
    'one JSON document `{"events": [...], "ended": bool}` of the events stored so far.',
}


class Hubs:
    """The run and session hubs of this process's event loop (created on first use)."""

    def __init__(self, runner: RunGateway, sessions: SessionGateway) -> None:
        self.runner, self.sessions = runner, sessions
        self._runs: EventHub | None = None
        self._sessions: EventHub | None = None

    @property
    def runs(self) -> EventHub:
        if self._runs is None:
            self._runs = EventHub("run", self.runner.wait_events)
        return self._runs

    @property
    def session_events(self) -> EventHub:
        if self._sessions is None:
            self._sessions = EventHub("session", self.sessions.wait_events)
        return self._sessions


def cursor(request: Request, after: int | None) -> int:
    """The resume point: ``Last-Event-ID`` wins over ``?after=``; 0 from the start."""
    header = request.headers.get("last-event-id")
    if header is None:
        return after or 0
    if not header.isdigit():
        raise InvalidRequestError(
            f"Last-Event-ID must be an event's sequence number, got {header!r}.", header="Last-Event-ID"
        )
    return int(header)


async def sse_response(events: AsyncIterator[dict[str, Any] | None]) -> EventSourceResponse:
    """SSE of ``events``; the first item is awaited here, so an unknown id is a 404 problem
    and not a stream that breaks."""
    first = await anext(events, _END)

    async def frames() -> AsyncIterator[ServerSentEvent]:
        item = first
        while item is not _END:
            if item is None:
                yield ServerSentEvent(comment="keep-alive")
            else:
                yield ServerSentEvent(data=json.dumps(item), event=item["type"], id=str(item["seq"]))
            item = await anext(events, _END)

    return EventSourceResponse(frames(), ping=KEEP_ALIVE_S, sep="\n")


_END: Any = object()


async def events_page(fetch: Fetch, log_id: str, after: int) -> Response:
    """``?follow=false``: the events after ``after`` stored now, as one JSON document
    ``{"events": [...], "ended": bool}`` (no waiting)."""
    events, ended = await fetch(log_id, after, 0.0)
    return Response(pydantic_core.to_json({"events": events, "ended": ended}), media_type="application/json")


def add_stream_routes(app: FastAPI, hubs: Hubs, runner: RunGateway, catalog: Mapping[str, RegisteredWorkflow]) -> None:
    """SSE: ``GET /runs/{id}/events``, ``GET /sessions/{id}/events``; WebSocket:
    ``/ws/sessions/{id}`` and ``/ws/{workflow}``."""

    @app.get(
        "/runs/{run_id}/events",
        tags=["runs"],
        summary="A run's events as SSE (a finished run replays and ends)",
        responses={200: _SSE_DOC, 404: problem_doc("No such run")},
        response_class=EventSourceResponse,
    )
    async def run_events(
        request: Request, run_id: str, after: Annotated[int | None, Query(ge=0)] = None, follow: bool = True
    ) -> Response:
        if not follow:
            return await events_page(runner.wait_events, run_id, cursor(request, after))
        return await sse_response(hubs.runs.subscribe(run_id, cursor(request, after)))

    @app.get(
        "/sessions/{session_id}/events",
        tags=["sessions"],
        summary="A session's events as SSE: updates from every channel, its runs, custom events",
        responses={200: _SSE_DOC, 404: problem_doc("No such session")},
        response_class=EventSourceResponse,
    )
    async def session_events(
        request: Request, session_id: str, after: Annotated[int | None, Query(ge=0)] = None, follow: bool = True
    ) -> Response:
        if not follow:
            return await events_page(hubs.sessions.wait_events, session_id, cursor(request, after))
        return await sse_response(hubs.session_events.subscribe(session_id, cursor(request, after)))

    @app.websocket("/ws/sessions/{session_id}")
    async def session_socket(websocket: WebSocket, session_id: str, after: int = 0) -> None:
        await websocket.accept()
        try:
            async for event in hubs.session_events.subscribe(session_id, after):
                if event is not None:
                    await websocket.send_text(pydantic_core.to_json(event).decode())
        except NexusError as exc:
            await _send_error(websocket, exc)
        except WebSocketDisconnect:
            return
        await _close(websocket)

    @app.websocket("/ws/{workflow}")
    async def workflow_socket(websocket: WebSocket, workflow: str) -> None:
        await websocket.accept()
        if workflow not in catalog:
            await _send_error(websocket, not_found(workflow, list(catalog)))
            await _close(websocket, 4404)
            return
        await WorkflowSocket(websocket, catalog[workflow], runner, hubs.runs).serve()


class WorkflowSocket:
    """One ``/ws/{workflow}`` connection: each ``{"inputs": {...}, "session_id"?}`` message
    starts a run whose events are streamed; ``{"cancel": run_id}`` cancels one. Several runs
    may share the connection; closing it leaves the runs running."""

    def __init__(self, websocket: WebSocket, item: RegisteredWorkflow, runner: RunGateway, hub: EventHub) -> None:
        self.websocket, self.item, self.runner, self.hub = websocket, item, runner, hub
        self._send_lock = asyncio.Lock()
        self._streams: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        try:
            while True:
                message = await self.websocket.receive_text()
                try:
                    await self._handle(message)
                except NexusError as exc:
                    await self._send(_error_message(exc))
        except WebSocketDisconnect:
            pass
        finally:
            for task in self._streams:
                task.cancel()

    async def _handle(self, message: str) -> None:
        try:
            body = json.loads(message)
        except json.JSONDecodeError as exc:
            raise InvalidRequestError(f"A WebSocket message must be JSON: {exc.msg} at column {exc.colno}.") from None
        if not isinstance(body, dict):
            raise InvalidRequestError('Send {"inputs": {...}} to run, or {"cancel": "<run_id>"} to cancel.')
        if "cancel" in body:  # its run.cancelled event follows on the run's stream
            await self.runner.cancel(str(body["cancel"]))
            return
        unknown = set(body) - {"inputs", "session_id"}
        if unknown or not isinstance(body.get("inputs", {}), dict):
            raise InvalidRequestError(
                f'Unknown or malformed fields {sorted(unknown) or ["inputs"]}: send {{"inputs": {{...}}, '
                '"session_id"?: "..."}} or {"cancel": "<run_id>"}.'
            )
        started = await self._start(body.get("inputs", {}), body.get("session_id"))
        task = asyncio.ensure_future(self._stream(started["run_id"]))
        self._streams.add(task)
        task.add_done_callback(self._streams.discard)

    async def _start(self, inputs: dict[str, Any], session_id: str | None) -> dict[str, Any]:
        name = self.item.name
        if session_id is not None:
            return await self.runner.execute_in_session(name, inputs, str(session_id), False)
        return await self.runner.start(name, self.item.workflow.resolve_inputs(inputs, name), new_run_id())

    async def _stream(self, run_id: str) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the client went away
            async for event in self.hub.subscribe(run_id):
                if event is not None:
                    await self._send(event)

    async def _send(self, payload: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_text(pydantic_core.to_json(payload).decode())


def _error_message(exc: NexusError) -> dict[str, Any]:
    return {"type": "error", "error": exc.to_problem()}


async def _send_error(websocket: WebSocket, exc: NexusError) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_text(pydantic_core.to_json(_error_message(exc)).decode())


async def _close(websocket: WebSocket, code: int = 1000) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.close(code)
