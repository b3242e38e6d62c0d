"""Roles and permissions, tenant-scoped ids, rate specs and token buckets, input depth."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from nexus_ray.errors import ConfigurationError, InputValidationError, PermissionDeniedError, RateLimitedError
from nexus_ray.runtime.ids import new_run_id
from nexus_ray.runtime.security_service import SecurityService
from nexus_ray.security.guard import _depth
from nexus_ray.security.principal import Principal
from nexus_ray.security.rate_limit import Bucket, RateLimiter, RateSpec
from nexus_ray.security.rbac import Rbac, load_roles
from nexus_ray.security.tenancy import owns, scoped, scoped_key, tag_of, tenant_tag
from nexus_ray.store import Store
from nexus_ray.store.backends import SQLiteBackend


def who(*roles: str) -> Principal:
    return Principal("ann", "acme", roles, "jwt")


def test_builtin_roles() -> None:
    rbac = Rbac()
    assert all(rbac.allowed(who("admin"), action, "any") for action in ("execute", "read", "cancel", "admin"))
    assert rbac.allowed(who("viewer"), "read", "w") and not rbac.allowed(who("viewer"), "execute", "w")
    with pytest.raises(PermissionDeniedError, match="Permission 'execute' on workflow 'w' is missing") as err:
        rbac.require(who("viewer"), "execute", "w")
    assert err.value.details["permission"] == "execute" and err.value.http_status == 403


def test_custom_roles_by_workflow_pattern() -> None:
    rbac = Rbac({"reporter": {"report_*": ["execute", "read"]}, "ops": {"*": ["cancel", "manage_sessions"]}})
    assert rbac.allowed(who("reporter"), "execute", "report_daily")
    assert not rbac.allowed(who("reporter"), "execute", "payroll")
    assert rbac.allowed(who("reporter"), "read")  # not tied to a workflow: any pattern grants it
    assert rbac.allowed(who("ops"), "manage_sessions") and not rbac.allowed(who("ops"), "execute", "x")
    assert not rbac.allowed(who("unknown-role"), "read", "x")


def test_allowed_everywhere_needs_a_star_grant() -> None:
    rbac = Rbac({"reporter": {"report_*": ["read"]}, "ops": {"*": ["cancel"]}})
    assert rbac.allowed_everywhere(who("admin"), "cancel") and rbac.allowed_everywhere(who("ops"), "cancel")
    assert rbac.allowed_everywhere(who("viewer"), "read") and not rbac.allowed_everywhere(who("viewer"), "cancel")
    assert not rbac.allowed_everywhere(who("reporter"), "read")


def test_roles_file(tmp_path: Path) -> None:
    path = tmp_path / "roles.yaml"
    path.write_text("roles:\n  reporter:\n    'report_*': [execute, read]\n")
    assert load_roles(path) == {"reporter": {"report_*": ["execute", "read"]}}
    path.write_text("roles:\n  bad:\n    '*': [execute, fly]\n")
    with pytest.raises(ConfigurationError, match="unknown actions \\['fly'\\]"):
        load_roles(path)
    path.write_text("roles: [")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        load_roles(path)


def test_tenant_scoped_ids() -> None:
    assert scoped("abc", "default") == "abc" and tag_of("abc") == ""
    run = scoped("abc", "acme")
    assert run == f"abc.{tenant_tag('acme')}" and owns("acme", run) and not owns("other", run)
    assert not owns("default", run) and not owns("acme", "abc")
    assert tag_of(run + "-d") == tenant_tag("acme")  # dedicated sessions end in -d
    assert scoped_key("k", "default") == "k" and scoped_key("k", "acme") != scoped_key("k", "beta")


@pytest.mark.parametrize(
    ("text", "capacity", "period"),
    [("100/minute", 100, 60.0), ("10/second", 10, 1.0), ("5 / hours", 5, 3600.0), ("20/10s", 20, 10.0)],
)
def test_rate_specs(text: str, capacity: int, period: float) -> None:
    spec = RateSpec.parse(text)
    assert (spec.capacity, spec.period_s) == (capacity, period)


@pytest.mark.parametrize("text", ["100", "0/minute", "ten/minute", "5/fortnight"])
def test_bad_rate_specs_say_the_format(text: str) -> None:
    with pytest.raises(ConfigurationError, match="100/minute"):
        RateSpec.parse(text)


def test_bucket_refills_evenly() -> None:
    spec = RateSpec.parse("10/second")
    bucket = Bucket(10.0, 0.0)
    assert bucket.take(spec, 15, 0.0)[0] == 10
    taken, retry = bucket.take(spec, 1, 0.0)
    assert taken == 0 and retry == pytest.approx(0.1)
    assert bucket.take(spec, 5, 0.35)[0] == 3


async def test_two_replicas_share_one_limit_exactly(tmp_path: Path) -> None:
    service = SecurityService(lambda: Store(SQLiteBackend(tmp_path / "n.db")))

    replicas = [RateLimiter(service.take), RateLimiter(service.take)]
    spec = RateSpec.parse("30/minute")
    admitted = 0
    for i in range(60):
        try:
            await replicas[i % 2].admit("acme/ann", spec, "'ann'")
            admitted += 1
        except RateLimitedError as exc:
            assert exc.headers()["retry-after"] == "2" and exc.headers()["ratelimit-limit"] == "30"
    assert admitted == 30
    service.store.close()


async def test_large_limits_lease_tokens_and_never_exceed(tmp_path: Path) -> None:
    service = SecurityService(lambda: Store(SQLiteBackend(tmp_path / "n.db")))
    calls = 0

    async def take(key: str, spec: RateSpec, wanted: int):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return await service.take(key, spec, wanted)

    replicas = [RateLimiter(take), RateLimiter(take)]
    spec = RateSpec.parse("1000/hour")  # lease of 20 tokens

    async def one(i: int) -> bool:
        try:
            await replicas[i % 2].admit("k", spec, "k")
            return True
        except RateLimitedError:
            return False

    results = await asyncio.gather(*(one(i) for i in range(1200)))
    assert sum(results) == 1000 and calls == 52  # a call per lease of 20, one "empty" per replica
    service.store.close()


def test_input_depth() -> None:
    assert _depth({"a": [1, {"b": 2}]}, 99) == 3 and _depth(5, 99) == 0
    deep: object = 1
    for _ in range(100):
        deep = [deep]
    assert _depth(deep, 33) == 33  # stops counting past the limit


def test_too_deep_inputs_are_refused(tmp_path: Path) -> None:
    from nexus_ray.security.guard import Guard
    from nexus_ray.settings import Settings

    guard = Guard(Settings(max_input_depth=3), None)
    guard.check_depth({"a": {"b": [1]}}, "inputs")
    with pytest.raises(InputValidationError) as err:
        guard.check_depth({"a": {"b": [[1]]}}, "inputs")
    assert err.value.errors == [
        {"field": "inputs", "message": "nests deeper than 3 levels (NEXUS_MAX_INPUT_DEPTH)", "type": "too_deep"}
    ]


async def test_guard_applies_the_global_limit_per_principal(tmp_path: Path) -> None:
    from nexus_ray.security.guard import Guard
    from nexus_ray.settings import Settings

    service = SecurityService(lambda: Store(SQLiteBackend(tmp_path / "n.db")))

    guard = Guard(Settings(rate_limit="2/minute"), service)
    ann, bob = Principal("ann", "acme", ("admin",), "jwt"), Principal("bob", "acme", ("admin",), "jwt")
    first = await guard.admit(ann)
    assert first["ratelimit-limit"] == "2" and first["ratelimit-remaining"] == "1"
    await guard.admit(ann)
    with pytest.raises(RateLimitedError, match="'ann'"):
        await guard.admit(ann)
    await guard.admit(bob)  # each principal has its own bucket
    service.store.close()


async def test_the_security_host_purges_audit_entries_past_the_retention(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nexus_ray.runtime.security_service.PURGE_CHUNK", 2)
    store = Store(SQLiteBackend(tmp_path / "n.db"))
    old = time.time() - 3 * 86400
    base = {"tenant": "A", "subject": "ann", "channel": "rest", "action": "execute", "target": None}
    entries = [{**base, "audit_id": f"{int(old * 1000):012x}{n:020x}", "at": old, "outcome": "ok"} for n in range(5)]
    store.append_audit([*entries, {**entries[0], "audit_id": new_run_id(), "at": time.time()}])
    store.close()
    keeper = SecurityService(lambda: Store(SQLiteBackend(tmp_path / "n.db")))
    await keeper.start()
    assert keeper._purging is None  # no retention: the whole trail is kept
    await keeper.close()
    service = SecurityService(lambda: Store(SQLiteBackend(tmp_path / "n.db")), audit_retention_s=86400)
    await service.start()  # the first purge runs at once, in chunks of 2
    for _ in range(100):
        await asyncio.sleep(0.02)
        if len(await service.list_audit("A", {"limit": 100})) == 1:
            break
    assert len(await service.list_audit("A", {"limit": 100})) == 1
    await service.close()
