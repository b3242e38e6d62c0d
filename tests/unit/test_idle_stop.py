"""When a dedicated SessionHost may stop (runtime/idle_stop.py)."""

from __future__ import annotations

import asyncio

import pytest

from nexus_ray.runtime.idle_stop import IdleClock, check_every_s, counted


class Host:
    def __init__(self, idle_s: float) -> None:
        self.idle = IdleClock(idle_s)

    @counted
    async def call(self, seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds


async def test_a_host_may_stop_only_with_no_call_running_none_for_the_idle_time_and_no_session() -> None:
    host = Host(idle_s=0.2)
    assert not host.idle.may_stop(0)  # just started: not idle for 0.2 s yet
    running = asyncio.ensure_future(host.call(1.0))
    await asyncio.sleep(0.3)
    assert host.idle.in_flight == 1 and not host.idle.may_stop(0)  # a long poll keeps it up
    assert await running == 1.0
    assert not host.idle.may_stop(0)  # the call just ended
    await asyncio.sleep(0.25)
    assert host.idle.may_stop(0)
    assert not host.idle.may_stop(1)  # its session is still in memory


async def test_a_call_that_fails_is_counted_out_too() -> None:
    class Failing(Host):
        @counted
        async def call(self, seconds: float) -> float:
            raise ValueError("no")

    host = Failing(idle_s=0.0)
    with pytest.raises(ValueError):
        await host.call(0)
    assert host.idle.in_flight == 0 and host.idle.may_stop(0)


def test_checks_are_often_enough_for_short_idle_times_and_not_too_often() -> None:
    assert check_every_s(300) == 5.0 and check_every_s(1) == 0.5 and check_every_s(0.01) == 0.05
