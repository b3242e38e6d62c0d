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


def session_created(store: Store, days_ago: float, n: int, updates_days_ago: tuple[float, ...] = ()) -> str:
    """A session whose id was drawn ``days_ago`` (its ``session.created`` event dated then)
    with one ``session.updated`` event per entry of ``updates_days_ago``."""
    session_id = run_id_created(days_ago * DAY, n)
    assert store.create_session(session_id, {"v": 0}, None) is not None
    for version in range(1, len(updates_days_ago) + 1):
        assert store.save_session(session_id, {"v": version}, version) is not None
    for seq, ago in enumerate((days_ago, *updates_days_ago), start=1):
        store.backend.execute(
            "UPDATE events SET created_at = ? WHERE scope = 'session' AND scope_id = ? AND seq = ?",
            (time.time() - ago * DAY, session_id, seq),
        )
    store.backend.commit()
    return session_id


def seqs(store: Store, session_id: str) -> list[int]:
    return [e["seq"] for e in store.list_events("session", session_id, after=0)]


def purge_all_session_logs(store: Store, cutoff: float, limit: int = 200) -> int:
    """Walk every log to the end as a host does; how many calls it took."""
    after: str | None = ""
    calls = 0
    while after is not None:
        after = store.purge_session_logs(cutoff, after, limit)
        calls += 1
    return calls


def test_a_live_session_s_events_past_the_cutoff_go_but_its_newest_stays(store: Store) -> None:
    """Every turn stores the whole state in a ``session.updated`` event: a session used
    for months held every state it ever had, retention or not."""
    busy = session_created(store, 30, 1, (20, 10, 8, 2, 1))
    quiet = session_created(store, 30, 2, (25, 20))  # nothing newer than the cutoff: its newest stays
    fresh = session_created(store, 1, 3, (0.5,))
    purge_all_session_logs(store, time.time() - 7 * DAY)
    assert seqs(store, busy) == [5, 6] and seqs(store, quiet) == [3] and seqs(store, fresh) == [1, 2]
    assert store.get_session(quiet).state == {"v": 2}  # type: ignore[union-attr]
    assert store.save_session(quiet, {"v": 3}, 3) is not None
    assert seqs(store, quiet) == [3, 4]  # numbers go on: a follower at 3 gets 4


def test_a_gone_session_s_end_goes_once_past_the_cutoff(store: Store) -> None:
    long_gone = session_created(store, 30, 1)
    just_gone = session_created(store, 30, 2)
    assert store.delete_session(long_gone) and store.delete_session(just_gone)
    store.backend.execute(
        "UPDATE events SET created_at = ? WHERE scope = 'session' AND scope_id = ?", (time.time() - 9 * DAY, long_gone)
    )
    store.backend.commit()
    purge_all_session_logs(store, time.time() - 7 * DAY)
    assert seqs(store, long_gone) == []
    assert [e["type"] for e in store.list_events("session", just_gone, after=0)] == ["session.deleted"]


def test_an_expired_session_not_yet_purged_keeps_its_log_for_the_purge_to_end(store: Store) -> None:
    expired = session_created(store, 30, 1, (20,))
    store.backend.execute("UPDATE sessions SET expires_at = ? WHERE session_id = ?", (time.time() - 10 * DAY, expired))
    store.backend.commit()
    purge_all_session_logs(store, time.time() - 7 * DAY)
    assert seqs(store, expired) == [2]  # trimmed as a live one; its end comes from the expiry purge
    assert store.purge_expired_sessions() == 1
    assert [e["type"] for e in store.list_events("session", expired, after=0)] == ["session.expired"]


def test_session_logs_are_trimmed_at_most_limit_rows_a_call_and_the_walk_goes_on(store: Store) -> None:
    long_log = session_created(store, 30, 1, (29, 28, 27, 26, 25, 24))
    other = session_created(store, 30, 2, (29, 28))
    cutoff, after, left = time.time() - 7 * DAY, "", [10]
    while after is not None:
        after = store.purge_session_logs(cutoff, after, 2)
        left.append(len(seqs(store, long_log)) + len(seqs(store, other)))
    assert left == [10, 8, 6, 4, 2]  # 2 rows a call, the first log's rest then the second's
    assert seqs(store, long_log) == [7] and seqs(store, other) == [3]
    assert store.purge_session_logs(cutoff, "", 3) is None  # both logs visited, nothing left to do
    assert seqs(store, long_log) == [7] and seqs(store, other) == [3]
