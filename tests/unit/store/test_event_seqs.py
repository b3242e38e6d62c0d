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
