"""Event streams over HTTP: SSE for runs and sessions (resumable with Last-Event-ID), and
WebSockets that run workflows and follow sessions."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import Response

from ...checks import decimal
from ...errors import AuthenticationError, InvalidRequestError, NexusError, PayloadTooLargeError
from ...registry import RegisteredWorkflow, not_found
from ...runtime.subscriptions import EventHub, Fetch
from ...security.guard import Guard
from ...security.principal import Principal
from ..secured import Access, PrincipalRuns
from ..wire_json import RefusedJSONError, dumps, dumps_text, loads
from .gateway import RunGateway
from .problems import problem_doc
from .security import principal_of
from .sessions import SessionGateway

KEEP_ALIVE_S = 15.0
TOKEN_WAIT_S = 10.0
# WebSocket close codes for errors before the socket serves (4000 + the HTTP status).
CLOSE_CODES = {401: 4401, 403: 4403, 404: 4404, 429: 4429}
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
    seq = decimal(header)
    if seq is None:
        raise InvalidRequestError(
            f"Last-Event-ID must be an event's sequence number, got {header!r}.", header="Last-Event-ID"
        )
    return seq


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
                yield ServerSentEvent(data=dumps_text(item), event=item["type"], id=str(item["seq"]))
            item = await anext(events, _END)

    return EventSourceResponse(frames(), ping=KEEP_ALIVE_S, sep="\n")


_END: Any = object()


async def events_page(fetch: Fetch, log_id: str, after: int) -> Response:
    """``?follow=false``: the events after ``after`` stored now, as one JSON document
    ``{"events": [...], "ended": bool}`` (no waiting)."""
    events, ended = await fetch(log_id, after, 0.0)
    return Response(dumps({"events": events, "ended": ended}), media_type="application/json")


def add_stream_routes(
    app: FastAPI,
    hubs: Hubs,
    access: Access,
    catalog: Mapping[str, RegisteredWorkflow],
    max_message_bytes: int = 1 << 20,
) -> None:
    """SSE: ``GET /runs/{id}/events``, ``GET /sessions/{id}/events``; WebSocket:
    ``/ws/sessions/{id}`` and ``/ws/{workflow}``. Every one checks that the caller may
    read (or run) what it asks for, and that it is of the caller's tenant."""
    guard = access.guard

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
        await access.runs(principal_of(request)).readable(run_id)
        if not follow:
            return await events_page(access.runner.wait_events, run_id, cursor(request, after))
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
        access.sessions(principal_of(request)).readable(session_id)
        if not follow:
            return await events_page(hubs.sessions.wait_events, session_id, cursor(request, after))
        return await sse_response(hubs.session_events.subscribe(session_id, cursor(request, after)))

    @app.websocket("/ws/sessions/{session_id}")
    async def session_socket(websocket: WebSocket, session_id: str, after: int = 0) -> None:
        await websocket.accept()
        try:
            principal = await authenticate_socket(websocket, guard)
            access.sessions(principal).readable(session_id)
            guard.audit.record(principal, "websocket", "session_events", 200, target=session_id)
            async for event in hubs.session_events.subscribe(session_id, after):
                if event is not None:
                    await websocket.send_text(dumps_text(event))
        except NexusError as exc:
            await _send_error(websocket, exc)
            # An unknown (or another tenant's) session ends the stream normally, as before auth.
            await _close(websocket, 1000 if exc.http_status == 404 else CLOSE_CODES.get(exc.http_status, 1008))
            return
        except WebSocketDisconnect:
            return
        await _close(websocket)

    @app.websocket("/ws/{workflow}")
    async def workflow_socket(websocket: WebSocket, workflow: str) -> None:
        await websocket.accept()
        try:
            principal = await authenticate_socket(websocket, guard)
            if workflow not in catalog:
                raise not_found(workflow, list(catalog))
            access.runs(principal).may_execute(catalog[workflow])
        except NexusError as exc:
            await _send_error(websocket, exc)
            await _close(websocket, CLOSE_CODES.get(exc.http_status, 1008))
            return
        await WorkflowSocket(websocket, catalog[workflow], access.runs(principal), hubs.runs, max_message_bytes).serve()


class WorkflowSocket:
    """One ``/ws/{workflow}`` connection: each ``{"inputs": {...}, "session_id"?}`` message
    starts a run whose events are streamed; ``{"cancel": run_id}`` cancels one. Several runs
    may share the connection; closing it leaves the runs running."""

    def __init__(
        self,
        websocket: WebSocket,
        item: RegisteredWorkflow,
        runs: PrincipalRuns,
        hub: EventHub,
        max_message_bytes: int = 1 << 20,
    ) -> None:
        self.websocket, self.item, self.runner, self.hub = websocket, item, runs, hub
        self.max_message_bytes = max_message_bytes
        self.guard = runs.guard
        self._send_lock = asyncio.Lock()
        self._streams: set[asyncio.Task[None]] = set()

    async def serve(self) -> None:
        try:
            while True:
                message = await self.websocket.receive_text()
                try:
                    await self._handle(message)
                except NexusError as exc:
                    self._audit("ws_message", exc.http_status)
                    await self._send(_error_message(exc))
        except WebSocketDisconnect:
            pass
        finally:
            for task in self._streams:
                task.cancel()

    async def _handle(self, message: str) -> None:
        if len(message) > self.max_message_bytes:
            raise PayloadTooLargeError(
                f"A message is larger than {self.max_message_bytes} bytes (NEXUS_MAX_BODY_BYTES).",
                limit_bytes=self.max_message_bytes,
            )
        try:
            body = loads(message)
        except json.JSONDecodeError as exc:
            raise InvalidRequestError(f"A WebSocket message must be JSON: {exc.msg} at column {exc.colno}.") from None
        except RefusedJSONError as exc:
            raise InvalidRequestError(f"A WebSocket message must be JSON: {exc}.") from None
        if not isinstance(body, dict):
            raise InvalidRequestError('Send {"inputs": {...}} to run, or {"cancel": "<run_id>"} to cancel.')
        if "cancel" in body:  # its run.cancelled event follows on the run's stream
            await self.runner.cancel(str(body["cancel"]))
            self._audit("cancel_run", 200, str(body["cancel"]))
            return
        unknown = set(body) - {"inputs", "session_id"}
        if unknown or not isinstance(body.get("inputs", {}), dict):
            raise InvalidRequestError(
                f'Unknown or malformed fields {sorted(unknown) or ["inputs"]}: send {{"inputs": {{...}}, '
                '"session_id"?: "..."}} or {"cancel": "<run_id>"}.'
            )
        principal = self.runner.principal
        await self.guard.admit(principal, self.item.name, self.item.rate_limit)
        self.guard.check_depth(body.get("inputs", {}), "inputs")
        started = await self._start(body.get("inputs", {}), body.get("session_id"))
        self._audit("execute", 202, started["run_id"])
        task = asyncio.ensure_future(self._stream(started["run_id"]))
        self._streams.add(task)
        task.add_done_callback(self._streams.discard)

    async def _start(self, inputs: dict[str, Any], session_id: str | None) -> dict[str, Any]:
        name = self.item.name
        if session_id is not None:
            return await self.runner.execute_in_session(name, inputs, str(session_id), False)
        return await self.runner.start(name, self.item.workflow.resolve_inputs(inputs, name), self.runner.new_run_id())

    def _audit(self, action: str, status: int, target: str | None = None) -> None:
        self.guard.audit.record(
            self.runner.principal, "websocket", action, status, target=target, workflow=self.item.name
        )

    async def _stream(self, run_id: str) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the client went away
            async for event in self.hub.subscribe(run_id):
                if event is not None:
                    await self._send(event)

    async def _send(self, payload: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_text(dumps_text(payload))


async def authenticate_socket(websocket: WebSocket, guard: Guard) -> Principal:
    """Who opened ``websocket``: from its headers (Authorization or X-API-Key), or, when
    it has none (browsers cannot set them), from a first message ``{"token": "..."}``."""
    if not guard.enabled:
        return guard.authenticate({})
    headers = {k.lower(): v for k, v in websocket.headers.items()}
    if "authorization" in headers or "x-api-key" in headers:
        return guard.authenticate(headers)
    try:
        first = await asyncio.wait_for(websocket.receive_text(), TOKEN_WAIT_S)
    except TimeoutError:
        raise AuthenticationError(
            f'No credential: send an Authorization header, or {{"token": "..."}} first (within {TOKEN_WAIT_S:.0f} s).'
        ) from None
    try:
        token = loads(first).get("token")
    except (ValueError, AttributeError):  # malformed, refused (NaN, too deep) or not an object
        token = None
    if not isinstance(token, str) or not token:
        raise AuthenticationError('The first message must be {"token": "<JWT or API key>"} (or send a header).')
    return guard.authenticate_token(token)


def _error_message(exc: NexusError) -> dict[str, Any]:
    return {"type": "error", "error": exc.to_problem()}


async def _send_error(websocket: WebSocket, exc: NexusError) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_text(dumps_text(_error_message(exc)))


async def _close(websocket: WebSocket, code: int = 1000) -> None:
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.close(code)
