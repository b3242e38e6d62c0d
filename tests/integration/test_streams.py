"""Events over the real server (Ray + Serve ingress): WebSocket and SSE clients, and the
Python API, against runs and sessions."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import websockets

from nexus_ray import Nexus


def ws_url(app: Nexus, path: str) -> str:
    return app.url.replace("http://", "ws://") + path


def three_step_inputs(tmp_path: Path, seconds: float = 0.3) -> dict[str, Any]:
    return {"path": str(tmp_path / "log.txt"), "seconds": seconds}


async def test_a_three_node_run_streams_node_events_in_order_over_websocket(app: Nexus, tmp_path: Path) -> None:
    async with websockets.connect(ws_url(app, "/ws/three_steps")) as ws:
        await ws.send(json.dumps({"inputs": three_step_inputs(tmp_path)}))
        events = []
        while not events or events[-1]["type"] != "run.completed":
            events.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
    assert [(e["type"], e["data"].get("node")) for e in events] == [
        ("run.started", None),
        ("node.started", "first"),
        ("node.completed", "first"),
        ("node.started", "slow"),
        ("node.completed", "slow"),
        ("node.started", "last"),
        ("node.completed", "last"),
        ("run.completed", None),
    ]
    assert [e["seq"] for e in events] == list(range(1, 9)) and len({e["run_id"] for e in events}) == 1
    assert events[-1]["data"]["outputs"]["last"] == {"result": "abc"}


async def test_cancel_over_a_real_websocket_and_closing_leaves_other_runs_running(
    app: Nexus, http: httpx.Client, tmp_path: Path
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    async with websockets.connect(ws_url(app, "/ws/three_steps")) as ws:
        await ws.send(json.dumps({"inputs": three_step_inputs(tmp_path / "a", 5.0)}))
        first = json.loads(await asyncio.wait_for(ws.recv(), 30))
        await ws.send(json.dumps({"cancel": first["run_id"]}))
        types = []
        while not types or types[-1] != "run.cancelled":
            event = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if event["run_id"] == first["run_id"]:
                types.append(event["type"])
        await ws.send(json.dumps({"inputs": three_step_inputs(tmp_path / "b", 0.5)}))
        second = json.loads(await asyncio.wait_for(ws.recv(), 30))["run_id"]
    assert "run.completed" not in types and http.get(f"/runs/{first['run_id']}").json()["status"] == "cancelled"
    deadline = asyncio.get_running_loop().time() + 30
    while http.get(f"/runs/{second}").json()["status"] != "completed":  # the socket closed; the run goes on
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.2)


def read_sse(lines: Any, count: int | None = None) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in fields:
                event = json.loads(fields["data"])
                assert fields["id"] == str(event["seq"])
                events.append(event)
                if count is not None and len(events) == count:
                    return events
            fields = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            fields[key] = value
    return events


def test_an_sse_reader_reconnecting_with_last_event_id_gets_exactly_the_rest(
    app: Nexus, http: httpx.Client, tmp_path: Path
) -> None:
    body = {"inputs": three_step_inputs(tmp_path, 1.0), "mode": "async"}
    run_id = http.post("/workflows/three_steps/execute", json=body).json()["run_id"]
    with http.stream("GET", f"/runs/{run_id}/events") as first:
        head = read_sse(first.iter_lines(), count=2)
    assert [e["seq"] for e in head] == [1, 2]
    with http.stream("GET", f"/runs/{run_id}/events", headers={"Last-Event-ID": "2"}) as second:
        rest = read_sse(second.iter_lines())
    assert [e["seq"] for e in rest] == list(range(3, 9)) and rest[-1]["type"] == "run.completed"
    everything = read_sse(http.get(f"/runs/{run_id}/events").text.splitlines())
    assert everything == head + rest


async def test_two_websocket_subscribers_of_a_session_both_get_a_rest_update(app: Nexus, http: httpx.Client) -> None:
    sid = http.post("/sessions", json={"state": {"n": 0}}).json()["session_id"]
    url = ws_url(app, f"/ws/sessions/{sid}?after=1")
    async with websockets.connect(url) as one, websockets.connect(url) as two:
        await asyncio.sleep(0.2)
        async with httpx.AsyncClient(base_url=app.url) as client:
            assert (await client.patch(f"/sessions/{sid}", json={"n": 1})).status_code == 200
        for ws in (one, two):
            event = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert event["type"] == "session.updated" and event["data"]["state"] == {"n": 1}


async def test_python_events_follow_a_run_and_a_session(app: Nexus, tmp_path: Path) -> None:
    run_id = app.submit("three_steps", three_step_inputs(tmp_path))
    types = [event["type"] async for event in app.events(run_id=run_id)]
    assert types[0] == "run.started" and types[-1] == "run.completed" and len(types) == 8
    sid = (await app.acreate_session({"n": 0}))["session_id"]
    await app.aupdate_session(sid, {"n": 1})
    seen: list[str] = []

    async def follow() -> None:
        seen.extend([e["type"] async for e in app.events(session_id=sid)])

    following = asyncio.ensure_future(follow())
    await asyncio.sleep(0.5)
    await app.adelete_session(sid)
    await asyncio.wait_for(following, 20)  # the stream ends with the session
    assert seen == ["session.created", "session.updated", "session.deleted"]
    assert [e["type"] async for e in app.events(session_id=sid)] == ["session.deleted"]  # all that is left


def test_ready_and_metrics_on_the_real_server(http: httpx.Client) -> None:
    ready = http.get("/ready")
    assert ready.status_code == 200 and set(ready.json()["checks"].values()) == {"ok"}

    def completed_runs() -> float:
        from prometheus_client.parser import text_string_to_metric_families

        families = {f.name: f for f in text_string_to_metric_families(http.get("/metrics").text)}
        samples = families["nexus_runs"].samples if "nexus_runs" in families else []
        return sum(
            s.value
            for s in samples
            if s.name == "nexus_runs_total" and s.labels == {"workflow": "whoami", "status": "completed"}
        )

    before = completed_runs()
    assert http.post("/workflows/whoami/execute", json={"inputs": {}}).json()["status"] == "completed"
    assert completed_runs() == before + 1
