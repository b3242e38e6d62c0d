"""Sessions as virtual actors (SessionService in-process, SQLite store)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nexus_ray import ExitCalledError, InvalidRequestError, NotFoundError
from nexus_ray.errors import PreconditionFailedError, StoreUnavailableError
from nexus_ray.runtime import session_service
from nexus_ray.runtime.merge_patch import merge_patch
from nexus_ray.runtime.session_service import SessionService
from nexus_ray.store import Store
from nexus_ray.store.backends import SQLiteBackend

from .helpers import lose_the_next_commit_reply


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [  # from RFC 7396, appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[SessionService]:
    svc = SessionService("s0", lambda: Store(SQLiteBackend(tmp_path / "s.db")))
    yield svc
    svc.close()


async def test_create_get_patch_delete(sessions: SessionService) -> None:
    created = await sessions.create({"user": {"name": "ada"}}, ttl_s=3600)
    sid = created["session_id"]
    assert created["version"] == 1 and created["expires_at"] > time.time() + 3500
    patched = await sessions.patch(sid, {"user": {"lang": "en"}, "cart": [1]})
    assert patched["state"] == {"user": {"name": "ada", "lang": "en"}, "cart": [1]} and patched["version"] == 2
    assert (await sessions.get(sid))["state"] == patched["state"]
    await sessions.delete(sid)
    with pytest.raises(NotFoundError):
        await sessions.get(sid)
    with pytest.raises(NotFoundError):
        await sessions.delete(sid)


async def test_if_match_on_a_stale_version_is_refused(sessions: SessionService) -> None:
    sid = (await sessions.create({"n": 0}))["session_id"]
    await sessions.patch(sid, {"n": 1}, if_version=1)
    with pytest.raises(PreconditionFailedError) as err:
        await sessions.patch(sid, {"n": 2}, if_version=1)
    assert err.value.details["current_version"] == 2 and err.value.http_status == 412


@pytest.fixture
def two_clusters(tmp_path: Path) -> Iterator[tuple[SessionService, SessionService]]:
    """The hosts of one session in two clusters on one store (a blue/green upgrade's
    overlap, two servers on one NEXUS_HOME): each holds its own copy in memory."""
    hosts = [SessionService("s0", lambda: Store(SQLiteBackend(tmp_path / "s.db"))) for _ in range(2)]
    yield hosts[0], hosts[1]
    for host in hosts:
        host.close()


async def test_a_turn_on_a_copy_another_cluster_changed_is_decided_on_what_the_store_holds(
    two_clusters: tuple[SessionService, SessionService],
) -> None:
    """Before, a PATCH on a copy the other cluster had changed got a 409 ("changed
    elsewhere"), and one with the store's If-Match version a 412 naming the stale one."""
    a, b = two_clusters
    sid = (await a.create({"n": 1}))["session_id"]
    await b.patch(sid, {"n": 2})
    patched = await a.patch(sid, {"m": 1})
    assert patched["state"] == {"n": 2, "m": 1} and patched["version"] == 3
    matched = await b.patch(sid, {"n": 5}, if_version=3)
    assert matched["state"] == {"n": 5, "m": 1} and matched["version"] == 4
    with pytest.raises(PreconditionFailedError) as err:
        await a.patch(sid, {"n": 6}, if_version=3)  # its copy says 3; the store holds 4
    assert err.value.details["current_version"] == 4
    await b.delete(sid)
    with pytest.raises(NotFoundError):
        await a.patch(sid, {"n": 7})


async def test_a_read_sees_another_cluster_s_write_once_its_copy_is_checked(
    two_clusters: tuple[SessionService, SessionService], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy the store has not confirmed for READ_CHECK_S is checked before a read.
    Before, a read returned the state from before the other cluster's write (or delete)
    for as long as the session stayed in memory."""
    monkeypatch.setattr(session_service, "READ_CHECK_S", 0.05, raising=False)
    a, b = two_clusters
    sid = (await a.create({"n": 1}))["session_id"]
    await b.patch(sid, {"n": 2})
    assert (await a.get(sid))["version"] == 1  # within READ_CHECK_S of its own write
    await asyncio.sleep(0.06)
    read = await a.get(sid)
    assert read["state"] == {"n": 2} and read["version"] == 2
    assert (await a.sync(sid, "api"))["version"] == 2
    await b.delete(sid)
    await asyncio.sleep(0.06)
    with pytest.raises(NotFoundError):
        await a.get(sid)


async def test_turns_of_two_clusters_at_once_all_apply_once(
    two_clusters: tuple[SessionService, SessionService],
) -> None:
    a, b = two_clusters
    sid = (await a.create({"n": 0}))["session_id"]
    await b.get(sid)
    replies = await asyncio.gather(
        *(host.turn(sid, lambda s: {"n": s["n"] + 1}) for _ in range(25) for host in (a, b)),
        return_exceptions=True,
    )
    assert [r for r in replies if not isinstance(r, dict)] == []  # before: one cluster's 25 got a 409
    final = await a.turn(sid, lambda s: s)
    assert final["state"]["n"] == 50 and final["version"] == 52
    assert sorted(r["version"] for r in replies) == list(range(2, 52))


async def test_a_follower_sees_the_events_another_cluster_wrote(
    two_clusters: tuple[SessionService, SessionService],
) -> None:
    """Before, a follower on one cluster never got an event written through the other:
    waits were served from its host's memory, and an event of its own cluster numbered
    after one of the other's was delivered without it (the cursor then passed it)."""
    a, b = two_clusters
    sid = (await a.create({"n": 0}))["session_id"]
    cursor = (await a.events(sid))[-1]["seq"]
    assert await a.wait_events(sid, cursor, 0.05) == ([], False)  # a's feed now follows the log
    await b.patch(sid, {"n": 1})
    events, ended = await a.wait_events(sid, cursor, 0.05)
    assert [e["data"]["state"] for e in events] == [{"n": 1}] and not ended
    waiting = asyncio.ensure_future(a.wait_events(sid, events[-1]["seq"], 5.0))
    await asyncio.sleep(0.05)
    await b.patch(sid, {"n": 2})
    await a.patch(sid, {"n": 3})  # wakes the wait; its event is numbered after b's
    events, _ = await asyncio.wait_for(waiting, 5)
    assert [e["data"]["state"] for e in events] == [{"n": 2}, {"n": 3}]
    await b.delete(sid)
    events, ended = await a.wait_events(sid, events[-1]["seq"], 0.05)
    assert [e["type"] for e in events] == ["session.deleted"] and ended


async def test_concurrent_turns_are_serialized(sessions: SessionService) -> None:
    sid = (await sessions.create({"n": 0}))["session_id"]
    await asyncio.gather(*(sessions.turn(sid, lambda s: {**s, "n": s["n"] + 1}) for _ in range(100)))
    final = await sessions.get(sid)
    assert final["state"]["n"] == 100 and final["version"] == 101


async def test_queued_turns_commit_together_each_with_its_own_version_and_event(
    sessions: SessionService,
) -> None:
    sid = (await sessions.create({"n": 0}))["session_id"]

    def boom(state: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("bad change")

    replies = await asyncio.gather(
        sessions.turn(sid, lambda s: {"n": s["n"] + 1}),
        sessions.turn(sid, boom),
        sessions.turn(sid, lambda s: {"n": s["n"] + 1}),
        sessions.patch(sid, {"n": 99}, if_version=1),  # stale by the time it is applied
        sessions.turn(sid, lambda s: {"n": s["n"] + 1}, if_version=3),
        sessions.turn(sid, lambda s: ["not", "an", "object"]),
        return_exceptions=True,
    )
    assert [r["version"] for r in replies if isinstance(r, dict)] == [2, 3, 4]
    assert [r["state"]["n"] for r in replies if isinstance(r, dict)] == [1, 2, 3]
    assert isinstance(replies[1], ValueError)
    assert isinstance(replies[3], PreconditionFailedError) and replies[3].details["current_version"] == 3
    assert isinstance(replies[5], InvalidRequestError) and "got list" in str(replies[5])
    updates = await sessions.events(sid, "session.updated")
    assert [(e["data"]["version"], e["data"]["state"]["n"]) for e in updates] == [(2, 1), (3, 2), (4, 3)]
    assert (await sessions.get(sid))["version"] == 4


async def test_a_turn_that_calls_sys_exit_fails_alone_and_the_host_goes_on(sessions: SessionService) -> None:
    """Before, SystemExit left the host's loop with it: the turns with it were never
    answered, nor any later call to that host."""
    sid = (await sessions.create({"n": 0}))["session_id"]

    def leave(state: dict[str, Any]) -> dict[str, Any]:
        raise SystemExit(3)

    replies = await asyncio.wait_for(
        asyncio.gather(
            sessions.turn(sid, lambda s: {"n": s["n"] + 1}),
            sessions.turn(sid, leave),
            sessions.turn(sid, lambda s: {"n": s["n"] + 1}),
            return_exceptions=True,
        ),
        5,
    )
    assert isinstance(replies[1], ExitCalledError)
    assert str(replies[1]) == f"a turn of session {sid!r} called sys.exit(3); it fails, and its host goes on"
    assert [r["state"] for r in replies if isinstance(r, dict)] == [{"n": 1}, {"n": 2}]
    assert (await sessions.get(sid))["version"] == 3


async def test_ttl_expiry(sessions: SessionService) -> None:
    sid = (await sessions.create({}, ttl_s=0.05))["session_id"]
    await asyncio.sleep(0.1)
    with pytest.raises(NotFoundError, match="may have expired"):
        await sessions.get(sid)


async def test_an_expired_session_s_followers_see_it_end_and_its_history_goes(sessions: SessionService) -> None:
    # An expired session's stream used to stay open for ever, and its log (every state
    # it had) stayed readable from memory and the store.
    sid = (await sessions.create({"secret": "s3cr3t"}, ttl_s=0.3))["session_id"]
    assert (await sessions.wait_events(sid, 0, 0.0))[0][0]["type"] == "session.created"  # followed from memory
    follower = asyncio.ensure_future(sessions.wait_events(sid, 1, 5.0))
    await asyncio.sleep(0.4)
    assert await sessions.purge_expired() == 1
    events, ended = await follower
    assert [e["type"] for e in events] == ["session.expired"] and ended
    late, ended = await sessions.wait_events(sid, 0, 0.0)  # a new follower, from the start
    assert [(e["seq"], e["type"]) for e in late] == [(2, "session.expired")] and ended
    assert [e["type"] for e in await sessions.events(sid)] == ["session.expired"]


@pytest.mark.parametrize(("call", "args"), [("emit", ("note.added", {})), ("sync", ("cli",))])
async def test_an_event_appended_while_its_session_is_deleted_is_refused_not_written_after_the_end(
    sessions: SessionService, call: str, args: tuple[Any, ...]
) -> None:
    sid = (await sessions.create({}))["session_id"]
    active = await sessions._activate(sid)
    async with active.lock:  # a turn in progress: both calls queue behind it, delete first
        deleting = asyncio.ensure_future(sessions.delete(sid))
        await asyncio.sleep(0.01)
        appending = asyncio.ensure_future(getattr(sessions, call)(sid, *args))
        await asyncio.sleep(0.01)
    await deleting
    with pytest.raises(NotFoundError):
        await appending
    assert [e["type"] for e in await sessions.events(sid)] == ["session.deleted"]


async def test_a_host_purges_the_expired_sessions_it_serves_and_leaves_others_to_their_host(
    sessions: SessionService,
) -> None:
    ids = [(await sessions.create({}, ttl_s=0.05))["session_id"] for _ in range(12)]
    await sessions.adopt_ring(1, ["s0", "elsewhere"])
    mine = [sid for sid in ids if sessions.ring.member_for(sid) == "s0"]  # type: ignore[union-attr]
    await asyncio.sleep(0.1)
    assert await sessions.purge_expired() == len(mine)
    ended = {sid for sid in ids if (await sessions.events(sid))[-1]["type"] == "session.expired"}
    assert ended == set(mine)


async def test_passivation_round_trip(sessions: SessionService, tmp_path: Path) -> None:
    sid = (await sessions.create({"k": "v"}))["session_id"]
    await sessions.patch(sid, {"k2": "v2"})
    assert sessions.info()["active_sessions"] == 1
    assert sessions.passivate_idle(idle_s=0) == 1 and sessions.info()["active_sessions"] == 0
    again = await sessions.get(sid)  # re-activated from the store
    assert again["state"] == {"k": "v", "k2": "v2"} and again["version"] == 2
    other = SessionService("s1", lambda: Store(SQLiteBackend(tmp_path / "s.db")))  # another host, same store
    assert (await other.get(sid))["state"] == again["state"]
    other.close()


async def test_a_session_holds_its_state_as_the_store_reads_it_back(sessions: SessionService) -> None:
    """Before, a datetime or a set stayed one in memory and came back a string or a list
    once the session was passivated or served by another host."""
    import datetime

    when = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
    sid = (await sessions.create({"when": when, "tags": {"a"}, "by_n": {1: "one"}}))["session_id"]
    expected = {"when": "2026-01-02T00:00:00Z", "tags": ["a"], "by_n": {"1": "one"}}
    assert (await sessions.get(sid))["state"] == expected
    turned = await sessions.turn(sid, lambda state: {**state, "pair": (1, 2)})
    assert turned["state"] == {**expected, "pair": [1, 2]}
    assert sessions.passivate_idle(idle_s=0) == 1
    assert (await sessions.get(sid))["state"] == turned["state"]  # the same after passivation
    patched = await sessions.patch(sid, {"more": {"c"}})  # a patch from Python, converted before it merges
    assert patched["state"]["more"] == ["c"] and (await sessions.get(sid))["state"] == patched["state"]
    emitted = await sessions.emit(sid, "noted", {"when": when, "tags": {"b"}})
    assert emitted["data"] == {"when": "2026-01-02T00:00:00Z", "tags": ["b"]}
    assert (await sessions.events(sid, "noted"))[-1]["data"] == emitted["data"]


async def test_a_turn_whose_state_json_cannot_hold_is_refused_and_the_turns_with_it_go_on(
    sessions: SessionService,
) -> None:
    sid = (await sessions.create({"n": 0}))["session_id"]
    bad = asyncio.ensure_future(sessions.turn(sid, lambda state: {**state, "thing": object()}))
    good = [asyncio.ensure_future(sessions.turn(sid, increment)) for _ in range(3)]
    with pytest.raises(InvalidRequestError, match=f"The new state of session {sid!r} cannot be stored as JSON"):
        await bad
    assert [(await g)["version"] for g in good] == [2, 3, 4]
    with pytest.raises(InvalidRequestError, match="A session's state cannot be stored as JSON"):
        await sessions.create({"thing": object()})
    with pytest.raises(InvalidRequestError, match="surrogates not allowed"):
        await sessions.create({"text": chr(0xD800)})


def increment(state: dict[str, Any]) -> dict[str, Any]:
    return {**state, "n": state["n"] + 1}


async def test_a_turn_sent_again_after_its_host_restarted_is_answered_not_applied_twice(
    sessions: SessionService, tmp_path: Path
) -> None:
    """A host dies after committing a turn but before replying; Ray sends the call again
    to the restarted host (same arguments, so the same turn id)."""
    sid = (await sessions.create({"n": 0}))["session_id"]
    first = await sessions.turn(sid, increment, None, "t-1")
    assert first["state"] == {"n": 1} and first["version"] == 2
    await sessions.patch(sid, {"x": 1}, 2, "t-2")  # If-Match: 2
    restarted = SessionService("s0", lambda: Store(SQLiteBackend(tmp_path / "s.db")))
    restarted.expect_retries()
    again = await restarted.turn(sid, increment, None, "t-1")
    assert again["state"] == {"n": 1} and again["version"] == 2  # the first call's result
    retried = await restarted.patch(sid, {"x": 1}, 2, "t-2")  # its If-Match is stale now: a 412 without the id
    assert retried["state"] == {"n": 1, "x": 1} and retried["version"] == 3
    new = await restarted.turn(sid, increment, None, "t-3")
    assert new["state"] == {"n": 2, "x": 1} and new["version"] == 4
    events = await restarted.events(sid, "session.updated", 0, 10)
    assert [e["data"]["turn"] for e in events] == ["t-1", "t-2", "t-3"]
    restarted.close()


async def test_a_host_not_restarted_applies_every_turn(sessions: SessionService) -> None:
    """Only calls that may be retries are looked up: a host that did not restart has had
    every call once."""
    sid = (await sessions.create({"n": 0}))["session_id"]
    await sessions.turn(sid, increment, None, "same")
    assert (await sessions.turn(sid, increment, None, "same"))["state"] == {"n": 2}


async def test_bad_input_is_named(sessions: SessionService) -> None:
    with pytest.raises(InvalidRequestError, match="ttl_s"):
        await sessions.create({}, ttl_s=0)
    with pytest.raises(InvalidRequestError, match="JSON object"):
        await sessions.create([1])  # type: ignore[arg-type]
    sid = (await sessions.create())["session_id"]
    with pytest.raises(InvalidRequestError, match="merge patch"):
        await sessions.patch(sid, [1])  # type: ignore[arg-type]


@pytest.mark.parametrize("ttl_s", [0, -1, True, "10", float("inf"), float("nan")])
async def test_a_ttl_is_a_positive_finite_number_of_seconds(sessions: SessionService, ttl_s: Any) -> None:
    with pytest.raises(InvalidRequestError, match=r"ttl_s must be a finite number of seconds \(more than 0\)"):
        await sessions.create({}, ttl_s=ttl_s)


@pytest.mark.parametrize("channel", ["", 5, "c" * 101])
async def test_a_channel_is_a_short_name(sessions: SessionService, channel: Any) -> None:
    with pytest.raises(InvalidRequestError, match="A channel is a name of 1-100 characters"):
        await sessions.create({}, channel=channel)
    sid = (await sessions.create({}, channel="api"))["session_id"]
    with pytest.raises(InvalidRequestError, match="A channel is a name"):
        await sessions.sync(sid, channel)


@pytest.mark.parametrize("if_version", ["1", True, 0, 1.0])
async def test_if_version_is_a_whole_version_number(sessions: SessionService, if_version: Any) -> None:
    """A version as text ("1", e.g. from an ETag) would compare unequal to the int 1 and be
    refused as stale even when current: it is refused by name instead."""
    sid = (await sessions.create())["session_id"]
    with pytest.raises(InvalidRequestError, match="if_version must be a whole number >= 1"):
        await sessions.patch(sid, {"n": 1}, if_version=if_version)
    assert (await sessions.patch(sid, {"n": 1}, if_version=1))["version"] == 2


async def test_listing(sessions: SessionService) -> None:
    ids = []
    for i in range(3):  # ids order by creation to the millisecond
        ids.append((await sessions.create({"i": i}))["session_id"])
        await asyncio.sleep(0.002)
    listed = await sessions.list(limit=2)
    assert [s["session_id"] for s in listed] == ids[::-1][:2]
    assert [s["session_id"] for s in await sessions.list(limit=2, before=listed[-1]["session_id"])] == [ids[0]]


async def test_seed_api_sync_emit_events(sessions: SessionService) -> None:
    sid = (await sessions.create({"k": 1}, channel="api"))["session_id"]
    synced = await sessions.sync(sid, "cli")
    assert synced["state"] == {"k": 1} and synced["version"] == 1
    event = await sessions.emit(sid, "order.placed", {"id": 7})
    assert event["seq"] == 3 and event["session_id"] == sid
    events = await sessions.events(sid)
    assert [(e["type"], e["data"].get("channel")) for e in events[:2]] == [
        ("session.created", "api"),
        ("session.synced", "cli"),
    ]
    assert [e["type"] for e in await sessions.events(sid, event_type="order.placed")] == ["order.placed"]
    glob = await sessions.emit(None, "maintenance", {"at": "noon"})
    assert glob["seq"] >= 1 and (await sessions.events(None))[-1]["type"] == "maintenance"
    with pytest.raises(InvalidRequestError, match="reserved"):
        await sessions.emit(sid, "session.fake", {})
    with pytest.raises(InvalidRequestError, match="JSON object"):
        await sessions.emit(sid, "x", [1])  # type: ignore[arg-type]


def test_calls_that_change_a_session_carry_a_turn_id_and_others_do_not() -> None:
    from nexus_ray.runtime.sessions_client import with_turn_id

    patched = with_turn_id("patch", ("s-1", {"a": 1}, None))
    assert patched[:3] == ("s-1", {"a": 1}, None) and len(patched[3]) == 16 and int(patched[3], 16) >= 0
    assert with_turn_id("turn", ("s-1", len, None))[3] != with_turn_id("turn", ("s-1", len, None))[3]
    assert with_turn_id("get", ("s-1",)) == ("s-1",)


async def test_a_create_sent_again_after_a_restart_gets_the_session_it_made(
    sessions: SessionService, tmp_path: Path
) -> None:
    """Before, the retried create hit the session's primary key: a 503 "The store failed:
    UNIQUE constraint failed" for a session that had been created."""
    from nexus_ray import ConflictError

    made = await sessions.create({"a": 1}, session_id="s-made")
    with pytest.raises(ConflictError, match="'s-made' exists already"):
        await sessions.create({"a": 1}, session_id="s-made")  # no restart: a real conflict
    restarted = SessionService("s0", lambda: Store(SQLiteBackend(tmp_path / "s.db")))
    restarted.expect_retries()
    again = await restarted.create({"a": 1}, session_id="s-made")
    assert again == made
    events = await restarted.events("s-made", None, 0, 10)
    assert [e["type"] for e in events] == ["session.created"]  # created once
    restarted.close()


async def test_a_delete_sent_again_after_a_restart_succeeds_and_others_still_get_404(
    sessions: SessionService, tmp_path: Path
) -> None:
    sid = (await sessions.create({}))["session_id"]
    await sessions.delete(sid)
    with pytest.raises(NotFoundError):
        await sessions.delete(sid)  # no restart: it is gone
    restarted = SessionService("s0", lambda: Store(SQLiteBackend(tmp_path / "s.db")))
    restarted.expect_retries()
    await restarted.delete(sid)  # the same call again: it did delete it
    with pytest.raises(NotFoundError):
        await restarted.delete("never-was")
    restarted.close()


async def test_a_turn_whose_commit_reply_was_lost_does_not_leave_the_host_a_version_behind(
    sessions: SessionService,
) -> None:
    """A connection lost after COMMIT reached the database: the turn is stored, its caller
    got a 503. Before, the host kept the state from before that turn, and the next turn
    of the session got a 409 ("changed elsewhere") although nobody else had changed it."""
    sid = (await sessions.create({"n": 0}))["session_id"]
    backend = sessions.store.store.backend  # type: ignore[union-attr]
    lose_the_next_commit_reply(backend)
    with pytest.raises(StoreUnavailableError):
        await sessions.patch(sid, {"a": 1})
    read = await sessions.get(sid)  # what the store holds, not the state before that turn
    assert read["state"] == {"n": 0, "a": 1} and read["version"] == 2
    patched = await sessions.patch(sid, {"b": 2})
    assert patched["state"] == {"n": 0, "a": 1, "b": 2} and patched["version"] == 3
