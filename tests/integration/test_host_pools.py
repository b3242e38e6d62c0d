"""The RunHost and SessionHost pools grow and shrink; sessions and runs move by re-hashing
and none is lost (no update, no run, no event)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import ray

from nexus_ray import Nexus, ScalingPolicy, Settings, WorkflowBuilder
from nexus_ray.scaling import ScaleDown, ScaleUp

SLOW_S = 3.0


def slow_step(tag: str, seconds: float, marks: str) -> dict[str, Any]:
    """Sleeps; leaves one file per execution, so a test sees a node that ran twice."""
    import os

    Path(marks, f"{tag}.{os.getpid()}.{time.time_ns()}").touch()
    time.sleep(seconds)
    return {"tag": tag}


async def long_nap(marks: str, tag: str) -> str:
    """Sleeps for a minute; leaves a file when it is cancelled."""
    import asyncio

    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        Path(marks, f"{tag}.cancelled").touch()
        raise
    return tag


def make_app(tmp_path: Path, policy: ScalingPolicy, **settings: Any) -> Nexus:
    app = Nexus(settings=Settings(home=tmp_path / "home", lease_s=2.0, scaling=policy, **settings))
    app.register("slow", WorkflowBuilder().add_node(slow_step, "step"))
    return app


def host_loads(app: Nexus, kind: str) -> dict[str, int]:
    hosts = app.runtime_pool().hosts if kind == "run" else app.runtime_pool().session_hosts
    key = "active_runs" if kind == "run" else "active_sessions"
    return {host_id: ray.get(h.info.remote())[key] for host_id, h in hosts.items()}


@pytest.fixture
def resizable(app: Nexus, tmp_path: Path) -> Iterator[Nexus]:
    """An app whose pools may hold 1-3 hosts, resized by hand here (the policy's delays
    are too long for the autoscaler to act during the test). ``app``: Ray is running."""
    hold = ScaleDown(for_s=3600, cooldown_s=3600)
    policy = ScalingPolicy(run_hosts_max=3, session_hosts_max=3, down=hold)
    second = make_app(tmp_path, policy)
    second.runtime_pool()
    yield second
    second.stop()


def test_sessions_move_without_losing_an_update(resizable: Nexus) -> None:
    pool = resizable.runtime_pool()
    sessions = [resizable.create_session({"n": 0})["session_id"] for _ in range(60)]
    stop = threading.Event()
    done: list[int] = []
    errors: list[BaseException] = []

    def increment(offset: int) -> None:
        count = 0
        try:
            while not stop.is_set():
                sid = sessions[(offset * 7 + count) % len(sessions)]
                resizable.update_session(sid, lambda s: {**s, "n": s["n"] + 1})
                count += 1
        except BaseException as exc:  # reported below
            errors.append(exc)
        done.append(count)

    threads = [threading.Thread(target=increment, args=(t,)) for t in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    assert pool.resize("session", 3) == 3
    time.sleep(1.5)
    spread = host_loads(resizable, "session")
    assert pool.resize("session", 2) == 2
    time.sleep(0.5)
    assert pool.resize("session", 1) == 1
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(60)
    assert not errors, errors[:3]
    assert len(spread) == 3 and all(n > 0 for n in spread.values()), f"not re-hashed: {spread}"
    total = sum(resizable.get_session(sid)["state"]["n"] for sid in sessions)
    assert total == sum(done) and total > 100, f"{sum(done)} increments made, {total} applied"
    for sid in sessions[:5]:
        seqs = [e["seq"] for e in resizable.get_events(sid, limit=1000)]
        assert seqs == list(range(1, len(seqs) + 1)), "a session's event log has a gap"


def test_runs_in_flight_survive_growing_and_shrinking(resizable: Nexus, tmp_path: Path) -> None:
    pool = resizable.runtime_pool()
    marks = tmp_path / "marks"
    marks.mkdir()
    before = [resizable.submit("slow", tag=f"a{i}", seconds=SLOW_S, marks=str(marks)) for i in range(8)]
    assert pool.resize("run", 3) == 3
    assert len(pool.client().hosts) == 3  # the resizer's own calls go by the new members at once
    after = [resizable.submit("slow", tag=f"b{i}", seconds=SLOW_S, marks=str(marks)) for i in range(12)]
    spread = host_loads(resizable, "run")
    assert sum(1 for n in spread.values() if n > 0) >= 2, f"new runs did not reach the new hosts: {spread}"
    # Looked up through the grown ring, the runs started before it still answer.
    assert all(resizable.get_run(r).status in ("running", "completed") for r in before)
    started = time.monotonic()
    assert pool.resize("run", 1) == 1  # drains the leaving hosts: waits for their runs
    assert time.monotonic() - started < 60
    results = [resizable.get_run(r) for r in before + after]
    assert [r.status for r in results] == ["completed"] * 20
    ran = sorted(p.name.split(".")[0] for p in marks.iterdir())
    assert ran == sorted([f"a{i}" for i in range(8)] + [f"b{i}" for i in range(12)]), "a node ran twice or never"
    history = pool.history("run")
    assert [size for _, size in history] == [1, 3, 2, 1]


def test_pools_follow_the_load(app: Nexus, tmp_path: Path) -> None:
    quick_up, quick_down = ScaleUp(for_s=1, cooldown_s=1), ScaleDown(for_s=3, cooldown_s=1)
    policy = ScalingPolicy(
        run_hosts_max=3, runs_per_host=4, session_hosts_max=2, sessions_per_host=20, up=quick_up, down=quick_down
    )
    scaled = make_app(tmp_path, policy, session_idle_s=2.0)
    try:
        pool = scaled.runtime_pool()
        marks = tmp_path / "marks"
        marks.mkdir()
        runs = [scaled.submit("slow", tag=f"r{i}", seconds=6.0, marks=str(marks)) for i in range(24)]
        sessions = [scaled.create_session({"i": i})["session_id"] for i in range(60)]
        grown = _wait_for(lambda: len(pool.hosts) >= 2 and len(pool.session_hosts) >= 2, 30)
        assert grown, f"pools did not grow: {pool.history('run')} {pool.history('session')}"
        assert all(scaled.get_session(sid)["state"]["i"] == i for i, sid in enumerate(sessions))
        shrunk = _wait_for(lambda: len(pool.hosts) == 1 and len(pool.session_hosts) == 1, 90)
        assert shrunk, f"pools did not shrink: {pool.history('run')} {pool.history('session')}"
        assert [scaled.get_run(r).status for r in runs] == ["completed"] * len(runs)
        assert len(list(marks.iterdir())) == len(runs), "a node ran twice"
        assert all(scaled.get_session(sid)["state"]["i"] == i for i, sid in enumerate(sessions))
    finally:
        scaled.stop()


def _wait_for(condition: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return False


def test_calls_made_while_the_pool_manager_restarts_wait_for_its_new_hosts(app: Nexus, tmp_path: Path) -> None:
    """The hosts are the PoolManager's actors: when it crashes they die with it, and Ray
    restarts it, which makes new ones (~5 s here). Before, a run or session call made
    meanwhile got a 503 ("A host is not available") after its one retry."""
    import asyncio
    import os
    import signal

    other = Nexus(settings=Settings(home=tmp_path / "home"))  # on the shared Ray, with a pool of its own
    other.register("double", WorkflowBuilder().add_node("PythonCodeNode", "d", {"code": "result = 2 * x"}))
    try:
        read, changed = (other.create_session({"n": 1})["session_id"] for _ in range(2))
        manager = other.runtime_pool().manager
        host = next(iter(other.runtime_pool().hosts.values()))
        os.kill(ray.get(manager.__ray_call__.remote(lambda _: os.getpid())), signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:  # its RunHost goes with it
            try:
                ray.get(host.__ray_call__.remote(lambda _: None), timeout=5)
            except ray.exceptions.ActorDiedError:
                break
            except (ray.exceptions.ActorUnavailableError, ray.exceptions.GetTimeoutError):
                pass  # going
            assert time.monotonic() < deadline, "the RunHost outlived its PoolManager"
            time.sleep(0.1)

        async def meanwhile() -> list[Any]:
            return list(
                await asyncio.gather(
                    other.aexecute("double", x=4), other.aget_session(read), other.aupdate_session(changed, {"n": 2})
                )
            )

        run, before, after = asyncio.run(meanwhile())
        assert run.outputs["d"]["result"] == 8 and before["state"] == {"n": 1} and after["version"] == 2
        assert other.execute("double", x=5).outputs["d"]["result"] == 10  # and the blocking API
    finally:
        other.stop()


def test_a_run_cancelled_off_its_host_stops_there_at_once(app: Nexus, tmp_path: Path) -> None:
    """Runs started before the pool grew go on on their first host, while their ids now
    belong to the new one, where a cancel goes: it marks the run cancelled in the store and
    tells the running host. Before, that host stopped it only at its next lease renewal,
    a third of the lease later (10 s here), and the node went on meanwhile. A wait for its
    events is passed on to the running host the same way."""
    hold = ScaleDown(for_s=3600, cooldown_s=3600)
    settings = Settings(home=tmp_path / "home", lease_s=30.0, scaling=ScalingPolicy(run_hosts_max=2, down=hold))
    other = Nexus(settings=settings)  # on the shared Ray, with a pool of its own
    other.register("long", WorkflowBuilder().add_node(long_nap, "nap"))
    marks = tmp_path / "marks"
    marks.mkdir()
    try:
        pool = other.runtime_pool()
        tags = {other.submit("long", marks=str(marks), tag=f"r{i}"): f"r{i}" for i in range(16)}
        assert _wait_for(lambda: all(other.get_run(r).nodes.get("nap") for r in tags), 30)
        assert pool.resize("run", 2) == 2
        ring = pool.client().members.ring
        moved = [r for r in tags if ring.member_for(r) != "run-host-0"]  # half of them, most likely
        assert moved, "no run id moved to the new host"
        id_host = pool.hosts[ring.member_for(moved[0])]  # gets the run's calls; another host runs it
        seen, _ = ray.get(id_host.wait_events.remote(moved[0], 0, 1.0))  # what the store has, at once
        started = time.monotonic()
        more, ended = ray.get(id_host.wait_events.remote(moved[0], seen[-1]["seq"], 1.0))
        # It waited on the host running the run for the next event (none came within the
        # 1 s long poll); from the store, the answer comes after 0.2 s.
        assert more == [] and not ended and time.monotonic() - started > 0.9
        assert other.cancel(moved[0]).status == "cancelled"
        assert _wait_for(lambda: (marks / f"{tags[moved[0]]}.cancelled").exists(), 3), "the node went on"
        assert [p.name for p in marks.iterdir()] == [f"{tags[moved[0]]}.cancelled"]  # only that one
        assert other.get_run(moved[0]).status == "cancelled"
    finally:
        other.stop()
