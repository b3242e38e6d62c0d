"""A process keeps at most DEDICATED_HANDLES_KEPT handles to dedicated session hosts (the
least recently used go, with their batchers): it kept one for every dedicated session
it ever called."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from nexus_ray.errors import RateLimitedError
from nexus_ray.runtime import session_host
from nexus_ray.runtime.dedicated_slots import ALL_LIMIT, TENANT_LIMIT
from nexus_ray.runtime.sessions_client import SessionsClient


class FakeHostClass:
    """Stands in for the SessionHost actor class: each ``options(...).remote(...)`` is a
    new handle, named like the actor would be."""

    made = itertools.count()

    @classmethod
    def options(cls, **options: Any) -> Any:
        class Starter:
            @staticmethod
            def remote(*args: Any) -> str:
                return f"handle-{next(cls.made)}-{options['name']}"

        return Starter


async def test_the_least_recently_used_dedicated_handles_go_with_their_batchers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(session_host, "SessionHost", FakeHostClass)
    monkeypatch.setattr("nexus_ray.runtime.sessions_client.DEDICATED_HANDLES_KEPT", 3)
    client = SessionsClient({"session-host-0": "h0"}, prefix="app")  # type: ignore[dict-item]
    first = client.host_for("s1-d")
    client.batchers.get("s1-d", first)
    second = client.host_for("s2-d")
    client.host_for("s3-d")
    assert client.host_for("s1-d") == first  # used again: now the most recent
    client.host_for("s4-d")  # one too many: s2-d, the least recently used, goes
    assert list(client._dedicated) == ["s3-d", "s1-d", "s4-d"]
    assert client.host_for("s2-d") != second  # called again: a new handle (the actor, if up, is found by name)
    assert list(client._dedicated) == ["s1-d", "s4-d", "s2-d"]  # s3-d made room for it
    assert client.batchers.get("s1-d", first) is client.batchers.get("s1-d", first)  # kept
    client._forget("s1-d")
    assert "s1-d" not in client._dedicated and not any("s1-d" in b for b in client.batchers._by_loop.values())


def test_twice_the_dedicated_limit_are_kept_when_that_is_more(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_host, "SessionHost", FakeHostClass)
    monkeypatch.setattr("nexus_ray.runtime.sessions_client.DEDICATED_HANDLES_KEPT", 3)
    client = SessionsClient({"session-host-0": "h0"}, prefix="app", settings={"max_dedicated_sessions": 4})  # type: ignore[dict-item]
    for n in range(10):
        client.host_for(f"s{n}-d")
    assert list(client._dedicated) == [f"s{n}-d" for n in range(2, 10)]


def test_a_refused_dedicated_session_gets_a_429_naming_the_limit_it_reached() -> None:
    settings = {"max_dedicated_sessions": 32, "max_dedicated_sessions_per_tenant": 4}
    client = SessionsClient({"session-host-0": "h0"}, prefix="app", settings=settings)  # type: ignore[dict-item]
    client._check_admitted("s1-d", None)  # admitted: nothing raised
    with pytest.raises(RateLimitedError, match=r"4 dedicated sessions of its tenant .*_PER_TENANT\)") as tenant:
        client._check_admitted("s1-d", TENANT_LIMIT)
    assert tenant.value.details["limit"] == 4 and tenant.value.headers()["retry-after"] == "10"
    with pytest.raises(
        RateLimitedError, match=r"32 dedicated sessions have one already \(NEXUS_MAX_DEDICATED_SESSIONS\)"
    ):
        client._check_admitted("s1-d", ALL_LIMIT)
