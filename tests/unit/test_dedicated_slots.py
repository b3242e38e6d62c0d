"""Slots for dedicated session actors: at most ``limit`` up at once; a slot whose actor is
gone is found free when the slots run out."""

from __future__ import annotations

from nexus_ray.runtime.dedicated_slots import (
    ALL_LIMIT,
    RECHECK_S,
    STARTING_S,
    TENANT_LIMIT,
    DedicatedSlots,
    host_name,
    sessions_of,
)


class Cluster:
    """The live dedicated actors, as the PoolManager lists them, and a clock."""

    def __init__(self) -> None:
        self.up: set[str] = set()
        self.now = 100.0
        self.listed = 0

    async def live(self) -> set[str]:
        self.listed += 1
        return set(self.up)

    def slots(self, limit: int, per_tenant: int | None = None) -> DedicatedSlots:
        return DedicatedSlots(limit, self.live, clock=lambda: self.now, per_tenant=per_tenant)


async def ok(slots: DedicatedSlots, session_id: str, beyond_limit: bool = False) -> bool:
    """Whether ``session_id`` was admitted."""
    return await slots.admit(session_id, beyond_limit) is None


async def test_no_more_than_the_limit_start_and_one_holding_a_slot_is_always_admitted() -> None:
    cluster = Cluster()
    slots = cluster.slots(2)
    assert [await ok(slots, s) for s in ("a-d", "b-d", "c-d")] == [True, True, False]
    cluster.up = {"a-d", "b-d"}
    cluster.now += STARTING_S
    assert await ok(slots, "a-d") and await ok(slots, "b-d")  # another process's first call to them
    assert not await ok(slots, "c-d")
    assert cluster.listed == 2  # once at first, once for the refusal; holders never cost a listing


async def test_a_slot_whose_actor_is_gone_is_free_at_the_next_recount() -> None:
    cluster = Cluster()
    slots = cluster.slots(2)
    assert await ok(slots, "a-d") and await ok(slots, "b-d")
    cluster.up = {"a-d", "b-d"}
    cluster.now += STARTING_S
    cluster.up.discard("a-d")  # it stopped itself (idle) or was deleted: nobody says so
    assert await ok(slots, "c-d")
    assert slots.held == 2 and not await ok(slots, "a-d")  # its next call must wait for a slot too


async def test_a_slot_just_given_out_counts_while_its_actor_starts() -> None:
    cluster = Cluster()
    slots = cluster.slots(1)
    assert await ok(slots, "a-d")  # not listed yet: its actor is being created
    cluster.now += STARTING_S / 2
    assert not await ok(slots, "b-d")
    cluster.now += STARTING_S  # never came up (its caller died first)
    assert await ok(slots, "b-d")


async def test_at_the_limit_the_actors_are_listed_at_most_once_a_recheck_interval() -> None:
    cluster = Cluster()
    slots = cluster.slots(1)
    cluster.up = {"a-d"}
    assert await ok(slots, "a-d")
    cluster.now += STARTING_S
    for _ in range(50):  # a flood of new dedicated sessions at the limit
        assert not await ok(slots, "b-d")
    assert cluster.listed == 2  # once at first, once for the flood
    cluster.now += RECHECK_S
    assert not await ok(slots, "b-d") and cluster.listed == 3


async def test_actors_up_before_the_manager_restarted_are_counted() -> None:
    cluster = Cluster()
    cluster.up = {"old1-d", "old2-d"}
    slots = cluster.slots(3)
    assert await ok(slots, "old1-d")  # a call from a process without a handle to it
    assert await ok(slots, "a-d")
    assert not await ok(slots, "b-d")
    assert slots.held == 3


def test_dedicated_sessions_are_found_by_their_hosts_names_not_the_pool_s() -> None:
    names = [host_name("nexus-ab", "0190aa-d"), "nexus-ab-session-host-0", host_name("nexus-cd", "0190bb-d")]
    assert sessions_of("nexus-ab", names) == {"0190aa-d"}


async def test_a_call_that_must_not_wait_takes_a_slot_past_the_limit() -> None:
    """A delete (it frees what it takes) and the end of a run in the session."""
    cluster = Cluster()
    slots = cluster.slots(1)
    assert await ok(slots, "a-d")
    assert await ok(slots, "b-d", beyond_limit=True)
    assert slots.held == 2 and not await ok(slots, "c-d")


async def test_one_tenant_holds_at_most_its_share_and_the_refusal_names_the_limit_reached() -> None:
    """Before, one tenant's dedicated sessions could take every slot, and no other tenant
    could start one."""
    cluster = Cluster()
    slots = cluster.slots(4, per_tenant=2)
    a1, a2, a3 = (f"0190a{n}.aaaa-d" for n in range(3))
    assert await ok(slots, a1) and await ok(slots, a2)
    assert await slots.admit(a3) == TENANT_LIMIT
    assert await ok(slots, "0190b1.bbbb-d") and await ok(slots, "0190c1-d")  # other tenants (the default too)
    assert await slots.admit("0190c2-d") == ALL_LIMIT
    cluster.up = {a1, a2, "0190b1.bbbb-d", "0190c1-d"}
    cluster.now += STARTING_S
    cluster.up.discard(a1)  # one of the tenant's actors stopped
    cluster.now += RECHECK_S
    assert await ok(slots, a3)  # found at the recount its refusal made
    assert await ok(slots, "0190a9.aaaa-d", beyond_limit=True) and slots.held == 5  # a delete or a run's end
