"""Event logs stay gap-free and ordered with the per-connection sequence hints: two
connections appending to one log, a rolled-back transaction, a rolled-back savepoint."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from nexus_ray.store import Store


def seqs(store: Store, scope_id: str) -> list[int]:
    return [e["seq"] for e in store.list_events("session", scope_id, None, 0, 1000)]


def test_two_connections_appending_to_one_log_leave_no_gap(make_backend: Callable[[], object]) -> None:
    first, second = Store(make_backend()), Store(make_backend())  # type: ignore[arg-type]
    try:
        written = []
        for i in range(12):
            writer = first if i % 3 else second  # each one's hint is stale after the other wrote
            written.append(writer.append_event("session", "s1", "custom.step", {"i": i})["seq"])
        assert written == list(range(1, 13))
        assert seqs(first, "s1") == list(range(1, 13))
    finally:
        first.close()
        second.close()


def test_a_rolled_back_transaction_leaves_no_hint_behind(store: Store) -> None:
    store.append_event("session", "s2", "custom.a", {})
    with pytest.raises(RuntimeError), store.transaction():
        store.append_event("session", "s2", "custom.b", {})
        store.append_event("session", "s2", "custom.c", {})
        raise RuntimeError("undo")
    assert store.append_event("session", "s2", "custom.d", {})["seq"] == 2
    assert seqs(store, "s2") == [1, 2]


def test_a_rolled_back_savepoint_leaves_no_hint_behind(store: Store) -> None:
    with store.transaction():
        store.append_event("session", "s3", "custom.a", {})
        with pytest.raises(RuntimeError), store.atomic():
            store.append_event("session", "s3", "custom.b", {})
            raise RuntimeError("undo this part only")
        assert store.append_event("session", "s3", "custom.c", {})["seq"] == 2
    assert [e["type"] for e in store.list_events("session", "s3", None, 0, 10)] == ["custom.a", "custom.c"]


def test_a_commit_whose_held_events_collide_takes_the_next_free_seqs(make_backend: Callable[[], object]) -> None:
    first, second = Store(make_backend()), Store(make_backend())  # type: ignore[arg-type]
    try:
        first.append_event("session", "s4", "custom.a", {})  # first's hint for s4: 1
        second.append_event("session", "s4", "custom.b", {})  # seq 2, unknown to first
        with first.transaction():
            other = first.append_event("session", "s5", "custom.x", {})
            late = [first.append_event("session", "s4", f"custom.{n}", {}) for n in ("c", "d")]
            after = first.append_event("session", "s5", "custom.y", {})
        assert [e["seq"] for e in late] == [3, 4]  # the dicts the callers got were corrected
        assert (other["seq"], after["seq"]) == (1, 2)
        assert [e["type"] for e in second.list_events("session", "s4", None, 0, 10)] == [
            "custom.a",
            "custom.b",
            "custom.c",
            "custom.d",
        ]
        assert seqs(second, "s4") == [1, 2, 3, 4]
        assert first.append_event("session", "s4", "custom.e", {})["seq"] == 5  # the hint follows
    finally:
        first.close()
        second.close()


def test_a_transaction_reads_the_events_it_has_not_written_yet(store: Store) -> None:
    with store.transaction():
        store.create_run("r1", "wf", {"a": {}}, owner="host", lease_s=10)
        store.append_event("run", "r1", "node.started", {"node": "a"})
        assert [e["type"] for e in store.list_events("run", "r1", None, 0, 10)] == ["run.started", "node.started"]
        assert store.last_event_seq("run", "r1") == 2
        run = store.get_run("r1")
        assert run is not None and run.nodes["a"].status.value == "running"


def test_hundreds_of_events_in_one_commit_keep_their_order(store: Store) -> None:
    with store.transaction():
        for i in range(300):
            store.append_event("session", f"many{i % 3}", "custom.step", {"i": i})
    for log in range(3):
        events = store.list_events("session", f"many{log}", None, 0, 1000)
        assert [e["seq"] for e in events] == list(range(1, 101))
        assert [e["data"]["i"] for e in events] == list(range(log, 300, 3))


def test_a_rolled_back_transaction_writes_none_of_its_held_events(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.append_event("session", "s6", "custom.a", {})
        raise RuntimeError("undo")
    assert store.list_events("session", "s6", None, 0, 10) == []
    assert store.append_event("session", "s6", "custom.b", {})["seq"] == 1
