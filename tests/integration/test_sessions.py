"""Sessions on the real runtime: one state across REST and Python, turns serialized."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from ray.exceptions import RayTaskError

from nexus_ray import InvalidRequestError, Nexus, NotFoundError
from nexus_ray.errors import PreconditionFailedError
from nexus_ray.runtime.session_service import READ_CHECK_S
from nexus_ray.store import Store
from nexus_ray.store.backends import SQLiteBackend

from .polling import wait_for


def test_session_shared_between_python_and_rest(app: Nexus, http: httpx.Client) -> None:
    created = app.create_session({"user": "ada"}, ttl_s=600)
    sid = created["session_id"]
    assert http.get(f"/sessions/{sid}").json()["state"] == {"user": "ada"}
    r = http.patch(f"/sessions/{sid}", json={"lang": "en"}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert app.get_session(sid)["state"] == {"user": "ada", "lang": "en"}
    with pytest.raises(PreconditionFailedError):
        app.update_session(sid, {"lang": "fr"}, if_version=1)
    app.delete_session(sid)
    assert http.get(f"/sessions/{sid}").status_code == 404
    with pytest.raises(NotFoundError) as gone:
        app.get_session(sid)
    assert not isinstance(gone.value, RayTaskError)  # ours, not Ray's wrapper and its traceback text
    assert str(gone.value) == f"No session with id {sid!r} (it may have expired)."


def test_a_turn_that_raises_raises_its_own_exception_and_changes_nothing(app: Nexus) -> None:
    sid = app.create_session({"n": 1})["session_id"]
    with pytest.raises(ZeroDivisionError) as failed:
        app.update_session(sid, lambda state: {"n": state["n"] / 0})
    assert not isinstance(failed.value, RayTaskError)
    assert isinstance(failed.value.__cause__, RayTaskError)  # which keeps the host's traceback
    assert app.get_session(sid)["version"] == 1


def test_one_hundred_concurrent_increments_are_serialized(app: Nexus) -> None:
    sid = app.create_session({"n": 0})["session_id"]

    def increment(_: int) -> int:
        return int(app.update_session(sid, lambda s: {**s, "n": s["n"] + 1})["version"])

    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        versions = list(pool.map(increment, range(100)))
    final = app.get_session(sid)
    assert final["state"]["n"] == 100 and final["version"] == 101
    assert sorted(versions) == list(range(2, 102))  # every turn saw the one before it


def test_run_in_a_session_over_rest_and_python(app: Nexus, http: httpx.Client) -> None:
    sid = http.post("/sessions", json={"state": {"name": "ada", "visits": 0}}).json()["session_id"]
    r = http.post("/workflows/visit/execute", json={"inputs": {}, "session_id": sid})
    assert r.status_code == 200 and r.json()["outputs"]["count"]["result"] == {"visits": 1, "greeting": "hi ada"}
    after_rest = http.get(f"/sessions/{sid}").json()
    assert after_rest["state"]["visits"] == 1 and after_rest["version"] == 2
    result = app.execute("visit", session_id=sid, name="bob")  # explicit input wins over the session's name
    assert result.outputs["count"]["result"] == {"visits": 2, "greeting": "hi bob"}
    assert app.get_session(sid)["state"] == {"name": "ada", "visits": 2, "greeting": "hi bob"}
    listed = http.get("/runs", params={"session_id": sid}).json()["runs"]
    assert {run["run_id"] for run in listed} == {r.json()["run_id"], result.run_id}
    assert http.post("/workflows/visit/execute", json={"session_id": "missing"}).status_code == 404


def test_seed_facade_session_api(app: Nexus, http: httpx.Client) -> None:
    sid = app.create_session({"cart": []}, channel="api")["session_id"]
    http.patch(f"/sessions/{sid}", json={"cart": [1]})  # a change over REST is in the same log
    assert app.sync_session(sid, "cli")["state"] == {"cart": [1]}
    app.broadcast_event("cart.checked", {"items": 1}, session_id=sid)
    events = app.get_events(sid)
    assert [e["type"] for e in events] == ["session.created", "session.updated", "session.synced", "cart.checked"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert events[0]["data"]["channel"] == "api" and events[2]["data"] == {"channel": "cli"}
    assert app.get_events(sid, "cart.checked")[0]["data"] == {"items": 1}


def test_dedicated_session_has_its_own_actor(app: Nexus, http: httpx.Client) -> None:
    import ray

    r = http.post("/sessions", json={"state": {"n": 0}, "dedicated": True})
    sid = r.json()["session_id"]
    assert r.status_code == 201 and sid.endswith("-d")
    host = app._pool.sessions().host_for(sid)
    assert ray.get(host.info.remote())["host_id"] == f"dedicated-{sid}"
    shared = {ray.get(h.info.remote())["host_id"] for h in app._pool.session_hosts.values()}
    assert f"dedicated-{sid}" not in shared
    app.update_session(sid, lambda s: {**s, "n": s["n"] + 1})  # same API as a shared session
    assert http.get(f"/sessions/{sid}").json()["state"] == {"n": 1}
    visit = http.post("/workflows/visit/execute", json={"inputs": {"name": "x", "visits": 0}, "session_id": sid})
    assert visit.json()["status"] == "completed" and app.get_session(sid)["state"]["visits"] == 1
    app.delete_session(sid)
    assert http.get(f"/sessions/{sid}").status_code == 404


def test_a_dedicated_session_s_actor_stops_when_idle_and_comes_back_on_its_next_call(app: Nexus) -> None:
    """Before, the actor of a dedicated session stayed up after its session was passivated
    or expired: every dedicated session ever made kept a worker process."""
    import ray
    from ray.exceptions import RayActorError

    from nexus_ray.runtime.dedicated_slots import host_name
    from nexus_ray.runtime.named_actors import NAMESPACE
    from nexus_ray.runtime.session_host import SessionHost
    from nexus_ray.runtime.session_service import DEDICATED_HOST_PREFIX

    client = app._pool.sessions()
    sid = client.new_session_id(dedicated=True)
    host = SessionHost.options(  # type: ignore[attr-defined]
        name=host_name(client.prefix, sid), namespace=NAMESPACE
    ).remote(DEDICATED_HOST_PREFIX + sid, {**client.settings, "session_idle_s": 0.5})
    assert ray.get(host.create.remote(sid, {"n": 1}, None))["version"] == 1
    deadline = time.monotonic() + 30
    while True:
        try:
            ray.get(host.info.remote(), timeout=5)
        except RayActorError:
            break  # it stopped itself
        assert time.monotonic() < deadline, "the idle dedicated host is still up"
        time.sleep(0.2)
    assert app.get_session(sid)["state"] == {"n": 1}  # a new actor, the state from the store
    app.delete_session(sid)


def test_dedicated_sessions_past_the_limit_get_429_and_a_freed_slot_is_used_again(
    app: Nexus, http: httpx.Client, tmp_path: Path
) -> None:
    """Each dedicated session has a worker process of its own (~94 MB). Before, nothing
    bounded them: a loop of `POST /sessions {"dedicated": true}` started processes until
    the machine ran out of memory. The end of a run in such a session is never refused: its
    nodes are done, and the run would stay `running`."""
    import ray

    from nexus_ray.runtime.dedicated_slots import STARTING_S, host_name
    from nexus_ray.runtime.named_actors import NAMESPACE

    first = http.post("/sessions", json={"state": {"n": 1}, "dedicated": True}).json()["session_id"]
    stopped = http.post("/sessions", json={"state": {}, "dedicated": True}).json()["session_id"]
    visited = http.post("/sessions", json={"state": {"visits": 0}, "dedicated": True}).json()["session_id"]
    inputs = {"path": str(tmp_path / "steps"), "seconds": STARTING_S + 3}
    body = {"inputs": inputs, "session_id": visited, "mode": "async"}
    run_id = http.post("/workflows/slow_visit/execute", json=body).json()["run_id"]
    client = app._pool.sessions()
    wait_for(http, run_id, lambda b: b["nodes"].get("tally", {}).get("status") == "running")  # it read the state
    for sid in (stopped, visited):
        ray.kill(ray.get_actor(host_name(client.prefix, sid), namespace=NAMESPACE), no_restart=True)
    time.sleep(STARTING_S)  # their slots no longer count as ones whose actors are starting
    limit = app.settings.max_dedicated_sessions
    filled, stop_filling = threading.Event(), threading.Event()
    filler = threading.Thread(target=_fill_dedicated_slots, args=(app._pool.manager, filled, stop_filling))
    filler.start()
    try:
        assert filled.wait(30), "the slots never ran out"
        _at_the_dedicated_limit(app, http, limit, first, stopped, run_id, visited)
    finally:
        stop_filling.set()
        filler.join()

    deadline = time.monotonic() + 15  # the fillers' actors never came: their slots are free again
    while (again := http.post("/sessions", json={"state": {}, "dedicated": True})).status_code == 429:
        assert time.monotonic() < deadline, again.json()
        time.sleep(0.5)
    assert again.status_code == 201
    for sid in (first, visited, again.json()["session_id"]):
        assert http.delete(f"/sessions/{sid}").status_code == 204


def _fill_dedicated_slots(manager: Any, filled: threading.Event, stop: threading.Event) -> None:
    """Keep every free slot taken by sessions whose actors never come (as if their callers
    had died), until ``stop``: the manager frees such slots at its next count of the live
    actors, and they are taken again at once."""
    import ray

    n = 0
    while not stop.is_set():
        while ray.get(manager.admit_dedicated.remote(f"{n:032x}-d")) is None:
            n += 1
        n += 1
        filled.set()
        time.sleep(0.02)


def _at_the_dedicated_limit(
    app: Nexus, http: httpx.Client, limit: int, first: str, stopped: str, run_id: str, visited: str
) -> None:
    refused = http.post("/sessions", json={"state": {}, "dedicated": True})
    assert refused.status_code == 429 and refused.headers["retry-after"] == "10"
    problem = refused.json()
    assert problem["type"].endswith("/rate-limited") and "NEXUS_MAX_DEDICATED_SESSIONS" in problem["detail"]
    assert problem["limit"] == limit
    assert http.get(f"/sessions/{first}").json()["state"] == {"n": 1}  # a session with its actor up goes on
    assert app.get_session(first)["version"] == 1  # also from a process without a handle to it
    assert http.post("/sessions", json={"state": {}}).status_code == 201  # shared ones have no such limit
    assert http.get(f"/sessions/{stopped}").status_code == 429  # its actor is gone: it needs a slot
    assert http.delete(f"/sessions/{stopped}").status_code == 204  # a delete never waits for one
    run = wait_for(http, run_id, lambda b: b["status"] != "running", timeout=30)  # its end starts the actor
    assert run["status"] == "completed", run
    assert http.get(f"/sessions/{visited}").json()["state"] == {"visits": 1}


def test_what_another_cluster_on_the_store_did_to_a_session_is_seen_over_rest(http: httpx.Client) -> None:
    """Another cluster on the same store writes through hosts of its own; here its writes
    are made on the store directly. Before, this cluster's host answered from its copy:
    a PATCH got a 409, an If-Match of the stored version a 412, a GET the old state (also
    after a delete), and the other cluster's events never reached its followers."""
    sid = http.post("/sessions", json={"state": {"n": 1}}).json()["session_id"]
    assert http.get(f"/sessions/{sid}").json()["version"] == 1  # now in its host's memory
    other = Store(SQLiteBackend(Path(os.environ["NEXUS_HOME"]) / "nexus.db"))
    try:
        other.save_session_states(sid, [{"n": 2}], 1)
        patched = http.patch(f"/sessions/{sid}", json={"m": 1})
        assert patched.status_code == 200, patched.text
        assert patched.json()["state"] == {"n": 2, "m": 1} and patched.json()["version"] == 3
        other.save_session_states(sid, [{"n": 3, "m": 1}], 3)
        matched = http.patch(f"/sessions/{sid}", json={"k": 1}, headers={"If-Match": '"4"'})
        assert matched.status_code == 200, matched.text
        assert matched.json()["state"] == {"n": 3, "m": 1, "k": 1} and matched.json()["version"] == 5
        seen = http.get(f"/sessions/{sid}/events", params={"after": 0, "follow": "false"}).json()["events"]
        assert [e["data"]["version"] for e in seen if e["type"] == "session.updated"] == [2, 3, 4, 5]
        other.save_session_states(sid, [{"n": 4}], 5)
        page = http.get(f"/sessions/{sid}/events", params={"after": seen[-1]["seq"], "follow": "false"}).json()
        assert [(e["type"], e["data"]["version"]) for e in page["events"]] == [("session.updated", 6)]
        time.sleep(READ_CHECK_S + 0.1)
        assert http.get(f"/sessions/{sid}").json()["state"] == {"n": 4}
        assert other.delete_session(sid)
        time.sleep(READ_CHECK_S + 0.1)
        assert http.get(f"/sessions/{sid}").status_code == 404
    finally:
        other.close()


async def test_what_ray_cannot_pickle_or_json_cannot_hold_is_named_and_the_calls_sent_with_it_go_on(
    app: Nexus,
) -> None:
    """Before, each was Ray's page-long TypeError ("Could not serialize the argument ..."),
    and through the async API no call batched with it was ever answered."""
    sid = (await app.acreate_session({"n": 1}))["session_id"]
    lock = threading.Lock()

    def locked(state: dict[str, object]) -> dict[str, object]:
        return {**state, "locked": lock.locked()}

    unpicklable = r"The arguments of {} cannot be sent to its host: .* \(cannot pickle '_thread.lock' object\)"
    with pytest.raises(InvalidRequestError, match=unpicklable.format("turn")):
        app.update_session(sid, locked)
    with pytest.raises(InvalidRequestError, match=unpicklable.format("patch")):
        app.update_session(sid, {"lock": lock})
    with pytest.raises(InvalidRequestError, match=unpicklable.format("create")):
        app.create_session({"lock": lock})
    with pytest.raises(InvalidRequestError, match=unpicklable.format("emit")):
        app.broadcast_event("custom.lock", {"lock": lock}, session_id=sid)
    with pytest.raises(InvalidRequestError, match="A session patch cannot be stored as JSON"):
        app.update_session(sid, {"at": object()})  # Ray can pickle it; the store cannot hold it
    first = asyncio.ensure_future(app.aget_session(sid))  # goes alone; the others are batched behind it
    together = asyncio.gather(
        app.aupdate_session(sid, {"n": 2}),
        app.aupdate_session(sid, locked),
        app.aupdate_session(sid, {"lock": lock}),
        app.aget_session(sid),
        return_exceptions=True,
    )
    patched, bad_turn, bad_patch, read = await asyncio.wait_for(together, 30)
    assert (await first)["state"] == {"n": 1}
    assert isinstance(bad_turn, InvalidRequestError) and "cannot pickle" in str(bad_turn)
    assert isinstance(bad_patch, InvalidRequestError) and "cannot pickle" in str(bad_patch)
    assert isinstance(patched, dict) and patched["state"] == {"n": 2}
    assert isinstance(read, dict) and read["session_id"] == sid  # answered, not left waiting
    after = await app.aget_session(sid)
    assert after["state"] == {"n": 2} and after["version"] == 2  # what was refused changed nothing
