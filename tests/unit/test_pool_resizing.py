"""Pool resizing without Ray: the sizing rules, member views, and a SessionHost handing
sessions over when the ring changes."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

from nexus_ray.runtime.errors import HostMovedError
from nexus_ray.runtime.membership import MemberView
from nexus_ray.runtime.session_service import SessionService
from nexus_ray.scaling import PoolScaler, ScaleDown, ScaleUp, ScalingPolicy
from nexus_ray.store import Store
from nexus_ray.store.backends import SQLiteBackend


def scaler(up_for: float = 10, down_for: float = 30, cooldown: float = 5) -> PoolScaler:
    up = ScaleUp(for_s=up_for, cooldown_s=min(cooldown, up_for))
    down = ScaleDown(for_s=down_for, cooldown_s=min(cooldown, down_for))
    return PoolScaler(1, 8, 100, up, down)


def test_grows_only_after_the_load_stayed_high_for_the_delay() -> None:
    rules = scaler(up_for=10)
    assert rules.desired(0, 4, active=500, cpu=10) == 4
    assert rules.desired(9, 4, active=500, cpu=10) == 4
    assert rules.desired(10, 4, active=500, cpu=10) == 5  # +25% of 4, at least one


def test_a_dip_restarts_the_delay_and_cpu_alone_grows_the_pool() -> None:
    rules = scaler(up_for=10)
    rules.desired(0, 4, active=500, cpu=10)
    rules.desired(5, 4, active=10, cpu=10)  # load fell: the clock restarts
    assert rules.desired(12, 4, active=10, cpu=80) == 4
    assert rules.desired(22, 4, active=10, cpu=80) == 5  # CPU > 70% for 10 s


def test_grows_by_a_quarter_and_stops_at_the_maximum() -> None:
    rules = scaler(up_for=0)
    assert rules.desired(0, 8 - 1, active=5000, cpu=0) == 8
    assert scaler(up_for=0).desired(0, 12 // 2, active=5000, cpu=0) == 8


def test_shrinks_one_host_at_a_time_when_low_for_the_delay_then_cools_down() -> None:
    rules = scaler(down_for=30, cooldown=5)
    assert rules.desired(0, 4, active=20, cpu=5) == 4
    assert rules.desired(30, 4, active=20, cpu=5) == 3  # 20 runs over 3 hosts < 10 each
    rules.resized(30)
    assert rules.desired(31, 3, active=20, cpu=5) == 3
    assert rules.desired(61, 3, active=20, cpu=5) == 3  # 20 over 2 hosts is not below 10
    assert rules.desired(70, 3, active=0, cpu=50) == 3  # idle, but the CPU is busy


def test_sizes_outside_the_bounds_are_brought_back() -> None:
    assert scaler().desired(0, 0, active=0, cpu=0) == 1
    assert scaler().desired(0, 12, active=0, cpu=0) == 8


def test_the_policy_checks_pool_bounds() -> None:
    with pytest.raises(ValueError, match="maximum"):
        ScalingPolicy(run_hosts_min=3, run_hosts_max=2)
    production = ScalingPolicy.production()
    assert production.resizes_run_hosts and production.resizes_session_hosts
    assert not ScalingPolicy().resizes_run_hosts


def test_a_member_view_takes_only_newer_members_and_pickles_without_its_watchers() -> None:
    view = MemberView({"a": "handle-a"}, kind="session", version=5)  # type: ignore[dict-item]
    view.apply(4, {"b": "handle-b"})  # type: ignore[dict-item]
    assert list(view.hosts) == ["a"]
    view.apply(6, {"a": "handle-a", "b": "handle-b"})  # type: ignore[dict-item]
    copy = pickle.loads(pickle.dumps(view))
    assert copy.version == 6 and set(copy.ring.members) == {"a", "b"} and copy.kind == "session"


@pytest.fixture
def two_hosts(tmp_path: Path) -> Iterator[tuple[SessionService, SessionService]]:
    hosts = (
        SessionService("h0", lambda: Store(SQLiteBackend(tmp_path / "s.db"))),
        SessionService("h1", lambda: Store(SQLiteBackend(tmp_path / "s.db"))),
    )
    yield hosts
    for host in hosts:
        host.close()


async def test_a_session_moves_to_its_new_owner_with_its_latest_state(
    two_hosts: tuple[SessionService, SessionService],
) -> None:
    old, new = two_hosts
    await old.adopt_ring(1, ["h0"])
    await new.adopt_ring(1, ["h0"])
    ids = [(await old.create({"n": 0}, session_id=f"s{i}"))["session_id"] for i in range(20)]
    with pytest.raises(HostMovedError):
        await new.get(ids[0])  # not its owner
    slow = asyncio.ensure_future(old.turn(ids[0], lambda s: {"n": s["n"] + 1}))
    await asyncio.sleep(0)
    await asyncio.gather(old.adopt_ring(2, ["h0", "h1"]), new.adopt_ring(2, ["h0", "h1"]))
    assert (await slow)["state"] == {"n": 1}  # the turn in flight committed before the move
    moved = [sid for sid in ids if new.ring is not None and new.ring.member_for(sid) == "h1"]
    assert moved, "with two hosts some of 20 sessions move"
    for sid in moved:
        with pytest.raises(HostMovedError, match="h1"):
            await old.get(sid)
        updated = await new.turn(sid, lambda s: {"n": s["n"] + 10})
        assert updated["state"]["n"] == (11 if sid == ids[0] else 10)
    await old.adopt_ring(1, ["h0"])  # an older ring changes nothing
    assert old.ring_version == 2


def test_resizing_run_hosts_without_the_store_is_refused_by_name() -> None:
    from nexus_ray import ConfigurationError, Nexus

    with pytest.raises(ConfigurationError, match="needs durable runs"):
        Nexus(durable=False, scaling=ScalingPolicy(run_hosts_max=3))
    with pytest.raises(ConfigurationError, match="scaling.run_hosts_min"):
        Nexus(scaling={"run_hosts_min": 0})


def test_pools_start_at_the_policy_minimum_or_the_fixed_size() -> None:
    from nexus_ray import Settings

    resized = Settings(run_hosts=4, session_hosts=3, scaling=ScalingPolicy(run_hosts_min=2, run_hosts_max=5))
    assert resized.host_pool_sizes() == {"run": 2, "session": 3}
