"""Both backends: API keys (digests only), the audit trail, tenant tags on runs and
sessions, and the per-tenant limit of active runs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from nexus_ray.errors import RateLimitedError
from nexus_ray.security.admin import create_api_key, list_api_keys, revoke_api_key
from nexus_ray.security.api_keys import matches, split
from nexus_ray.security.tenancy import scoped, tenant_tag
from nexus_ray.store import Store
from nexus_ray.workflow import RunStatus


def test_api_keys_are_stored_hashed_listed_and_revoked(store: Store) -> None:
    before = store.api_keys_fingerprint()
    created = create_api_key(store, "acme", ["admin", "viewer"], "ci")
    key_id, secret = split(created["api_key"])  # type: ignore[misc]
    assert key_id == created["key_id"] and store.api_keys_fingerprint() != before
    [stored] = store.api_keys()
    assert secret not in stored.secret_hash and matches(stored, secret) and not matches(stored, secret + "x")
    assert list_api_keys(store) == [{k: v for k, v in created.items() if k != "api_key"}]
    fingerprint = store.api_keys_fingerprint()
    revoked = revoke_api_key(store, key_id)
    assert revoked["revoked_at"] is not None and store.api_keys()[0].revoked_at is not None
    assert store.api_keys_fingerprint() != fingerprint


def test_revoking_an_unknown_key_names_it(store: Store) -> None:
    with pytest.raises(Exception, match="No API key with id 'nope'"):
        revoke_api_key(store, "nope")


def test_audit_entries_per_tenant_newest_first_with_filters(store: Store) -> None:
    base = {"channel": "rest", "target": None, "workflow": "w", "status": 200, "detail": None}
    entries = [
        {**base, "audit_id": f"a{i}", "at": 100.0 + i, "tenant": t, "subject": s, "action": a, "outcome": o}
        for i, (t, s, a, o) in enumerate(
            [("A", "ann", "execute", "ok"), ("B", "bob", "execute", "ok"), ("A", "ann", "cancel_run", "denied")]
        )
    ]
    entries[2]["detail"] = {"why": "test"}
    store.append_audit(entries)
    mine = store.list_audit("A")
    assert [e["audit_id"] for e in mine] == ["a2", "a0"] and mine[0]["detail"] == {"why": "test"}
    assert [e["audit_id"] for e in store.list_audit("A", outcome="denied")] == ["a2"]
    assert [e["audit_id"] for e in store.list_audit("A", since=101.5)] == ["a2"]
    assert [e["audit_id"] for e in store.list_audit("A", before="a2")] == ["a0"]
    assert store.list_audit("B", action="cancel_run") == []


def audit_entry(seconds_ago: float, n: int) -> dict[str, object]:
    """An entry as a replica records it: its id begins with its time (new_run_id)."""
    at = time.time() - seconds_ago
    base = {"tenant": "A", "subject": "ann", "channel": "rest", "action": "execute", "target": None}
    return {**base, "audit_id": f"{int(at * 1000):012x}{n:020x}", "at": at, "workflow": "w", "outcome": "ok"}


def test_audit_entries_past_the_retention_are_purged_oldest_first(store: Store) -> None:
    old = [audit_entry(10 * 86400 - n, n) for n in range(5)]
    recent = audit_entry(60, 99)
    store.append_audit([*old, recent])
    cutoff = time.time() - 7 * 86400
    assert store.purge_audit(cutoff, limit=3) == 3
    left = [recent, old[4], old[3]]  # newest first
    assert [e["audit_id"] for e in store.list_audit("A")] == [e["audit_id"] for e in left]
    assert store.purge_audit(cutoff, limit=3) == 2 and store.purge_audit(cutoff) == 0
    assert [e["audit_id"] for e in store.list_audit("A")] == [recent["audit_id"]]


def test_runs_and_sessions_carry_their_tenant_tag(store: Store) -> None:
    run_a, run_default = scoped("0001", "acme"), "0002"
    store.create_run(run_a, "w", {}, owner="h")
    store.create_run(run_default, "w", {}, owner="h")
    assert [r.run_id for r in store.list_runs(tenant_tag=tenant_tag("acme"))] == [run_a]
    assert [r.run_id for r in store.list_runs(tenant_tag="")] == [run_default]
    assert len(store.list_runs()) == 2
    store.create_session(scoped("s1", "acme"), {}, None)
    store.create_session("s2", {}, None)
    assert [s.session_id for s in store.list_sessions(tenant_tag=tenant_tag("acme"))] == [scoped("s1", "acme")]


def test_active_run_limit_per_tenant(store: Store) -> None:
    for i in range(2):
        assert store.create_run(scoped(f"r{i}", "acme"), "w", {}, owner="h", max_active_per_tenant=2)
    with pytest.raises(RateLimitedError, match="already has 2 runs") as err:
        store.create_run(scoped("r9", "acme"), "w", {}, owner="h", max_active_per_tenant=2)
    assert err.value.headers()["retry-after"] == "1"
    assert store.create_run("other", "w", {}, owner="h", max_active_per_tenant=2)  # another tenant
    store.finish_run(scoped("r0", "acme"), RunStatus.COMPLETED, {}, None)
    assert store.create_run(scoped("r9", "acme"), "w", {}, owner="h", max_active_per_tenant=2)


def test_the_tenant_limit_holds_when_two_connections_create_at_once(
    store: Store, make_backend: Callable[[], object]
) -> None:
    """A count and the insert it allows are one step: a second connection that creates
    while the first one's run is not committed yet waits for it and then sees it (on
    PostgreSQL, READ COMMITTED alone would let both count 0 and both insert)."""
    other = Store(make_backend())  # type: ignore[arg-type]
    counted = threading.Event()
    outcome: list[object] = []

    def second() -> None:
        counted.wait(10)
        try:
            outcome.append(other.create_run(scoped("r2", "acme"), "w", {}, owner="h", max_active_per_tenant=1))
        except RateLimitedError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    with store.transaction(write=True):
        assert store.create_run(scoped("r1", "acme"), "w", {}, owner="h", max_active_per_tenant=1)
        counted.set()
        time.sleep(0.5)  # the second connection counts now, or waits for this commit
    thread.join(10)
    other.close()
    assert len(outcome) == 1 and isinstance(outcome[0], RateLimitedError), outcome
