"""Consistent hashing of ids over pool members (virtual actors are placed by their id)."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence


def _point(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big")


class HashRing:
    """Maps ids to members; adding or removing a member moves only ~1/n of the ids.

    Args:
        members: Member names (e.g. RunHost ids).
        replicas: Virtual points per member (more: smoother spread).
    """

    def __init__(self, members: Sequence[str], replicas: int = 64) -> None:
        if not members:
            raise ValueError("a hash ring needs at least one member")
        points = sorted((_point(f"{m}#{i}"), m) for m in members for i in range(replicas))
        self._keys = [p for p, _ in points]
        self._members = [m for _, m in points]
        self.members: tuple[str, ...] = tuple(members)

    def member_for(self, key: str) -> str:
        """The member that owns ``key``."""
        if len(self.members) == 1:
            return self.members[0]
        index = bisect.bisect(self._keys, _point(key)) % len(self._keys)
        return self._members[index]
