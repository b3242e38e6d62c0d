"""Run retention, both backends: finished runs past the cutoff go with their events and
idempotency keys; running runs, recent runs and other keys stay."""

from __future__ import annotations

import time

from nexus_ray.store import Store
from nexus_ray.workflow import RunStatus

DAY = 86400.0


def run_id_created(seconds_ago: float, n: int) -> str:
    """A run id as new_run_id() drew it ``seconds_ago`` (ids begin with their time)."""
    return f"{int((time.time() - seconds_ago) * 1000):012x}{n:020x}"


def finished_run(store: Store, run_id: str, finished_ago: float | None, key: str | None = None) -> None:
    """A run with its events (run.started, run.completed) and maybe an idempotency key;
    finished ``finished_ago`` seconds ago (None: still running)."""
    assert store.create_run(run_id, "wf", {"a": {"x": 1}}, owner="h0", lease_s=60)
    if key is not None:
        store.claim_idempotency_key(key, "digest", run_id)
    if finished_ago is not None:
        assert store.finish_run(run_id, RunStatus.COMPLETED, {"a": {"result": 1}}, None)
        store.backend.execute("UPDATE runs SET finished_at = ? WHERE run_id = ?", (time.time() - finished_ago, run_id))
    store.backend.commit()


def test_only_finished_runs_past_the_cutoff_are_purged_with_their_events_and_keys(store: Store) -> None:
    old = run_id_created(10 * DAY, 1)
    old_running = run_id_created(10 * DAY, 2)
    old_but_just_finished = run_id_created(10 * DAY, 3)
    recent = run_id_created(60, 4)
    finished_run(store, old, 9 * DAY, key="k-old")
    finished_run(store, old_running, None, key="k-running")
    finished_run(store, old_but_just_finished, 3600)
    finished_run(store, recent, 30)
    assert [e["type"] for e in store.list_events("run", old)] == ["run.started", "run.completed"]

    assert store.purge_finished_runs(time.time() - 7 * DAY) == 1

    assert store.get_run(old) is None and store.list_events("run", old) == []
    assert store.claim_idempotency_key("k-old", "other", recent) == (recent, "other")  # the key is free again
    assert store.claim_idempotency_key("k-running", "other", recent) == (old_running, "digest")
    for kept in (old_running, old_but_just_finished, recent):
        assert store.get_run(kept) is not None and store.list_events("run", kept)
    assert store.purge_finished_runs(time.time() - 7 * DAY) == 0


def test_a_purge_deletes_at_most_its_limit_oldest_first(store: Store) -> None:
    ids = [run_id_created((30 - n) * DAY, n) for n in range(5)]
    for run_id in ids:
        finished_run(store, run_id, 20 * DAY)
    assert store.purge_finished_runs(time.time() - DAY, limit=2) == 2
    assert [store.get_run(r) is None for r in ids] == [True, True, False, False, False]
    assert store.purge_finished_runs(time.time() - DAY, limit=2) == 2
    assert store.purge_finished_runs(time.time() - DAY, limit=2) == 1
    assert all(store.get_run(r) is None for r in ids)


def global_events(store: Store, *days_ago: float) -> None:
    """Events broadcast without a session, created ``days_ago`` (oldest first)."""
    for n, ago in enumerate(days_ago):
        store.append_event("global", "", "news", {"n": n})
        store.backend.execute(
            "UPDATE events SET created_at = ? WHERE scope = 'global' AND seq = ?", (time.time() - ago * DAY, n + 1)
        )
    store.backend.commit()


def test_global_events_past_the_cutoff_are_purged_oldest_first_a_chunk_at_a_time(store: Store) -> None:
    global_events(store, 30, 20, 10, 9, 1, 0)
    assert store.purge_global_events(time.time() - 7 * DAY, limit=3) == 3
    assert [e["seq"] for e in store.list_events("global", "")] == [4, 5, 6]
    assert store.purge_global_events(time.time() - 7 * DAY, limit=3) == 1
    assert store.purge_global_events(time.time() - 7 * DAY, limit=3) == 0
    assert [e["data"]["n"] for e in store.list_events("global", "")] == [4, 5]


def test_the_newest_global_event_is_kept_so_its_numbers_go_on(store: Store) -> None:
    """Sequence numbers are the last one + 1: had every event gone, the next broadcast
    would be number 1 again, and a follower at 3 would never see it."""
    global_events(store, 30, 20, 10)
    assert store.purge_global_events(time.time()) == 2
    store.append_event("global", "", "news", {"n": 3})
    store.backend.commit()
    assert [e["seq"] for e in store.list_events("global", "", after=0)] == [3, 4]
