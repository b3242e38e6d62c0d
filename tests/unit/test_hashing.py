from collections import Counter

from nexus_ray.runtime.hashing import HashRing


def test_ids_spread_over_members_and_are_stable() -> None:
    ring = HashRing([f"h{i}" for i in range(4)])
    owners = Counter(ring.member_for(f"run-{i}") for i in range(4000))
    assert set(owners) == {"h0", "h1", "h2", "h3"}
    assert min(owners.values()) > 600  # roughly 1000 each
    assert ring.member_for("run-7") == HashRing([f"h{i}" for i in range(4)]).member_for("run-7")


def test_adding_a_member_moves_only_its_share() -> None:
    before = HashRing(["a", "b", "c"])
    after = HashRing(["a", "b", "c", "d"])
    ids = [f"id{i}" for i in range(3000)]
    moved = [i for i in ids if before.member_for(i) != after.member_for(i)]
    assert all(after.member_for(i) == "d" for i in moved)
    assert 0.1 < len(moved) / len(ids) < 0.4
