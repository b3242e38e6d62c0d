"""Both backends answer text no column can hold (a NUL, which PostgreSQL's text refuses;
a lone surrogate, which UTF-8 cannot encode) the same way: a lookup finds nothing. Before,
PostgreSQL failed each such call as a database error (a 503 "The store failed" for a
caller's typo) and SQLite failed on a surrogate (a 500)."""

from __future__ import annotations

import asyncio

import pytest

from nexus_ray.errors import InvalidRequestError
from nexus_ray.security.admin import create_api_key
from nexus_ray.security.audit import AuditTrail
from nexus_ray.security.principal import Principal
from nexus_ray.store import Store
from nexus_ray.stored_text import storable, storable_form
from nexus_ray.workflow.events import check_custom_event

UNSTORABLE = ["a\x00b", "a\ud800b"]


@pytest.mark.parametrize("text", UNSTORABLE)
def test_lookups_by_unstorable_text_find_nothing(store: Store, text: str) -> None:
    store.create_run("r1", "wf", {}, owner="h0", lease_s=30, session_id="s1")
    assert store.create_session("s1", {"n": 1}, None) is not None
    assert store.get_run(text) is None and store.get_session(text) is None
    assert store.delete_session(text) is False
    assert store.list_runs(workflow=text) == [] and store.list_runs(session_id=text) == []
    assert store.list_events("session", text) == [] and store.last_event_seq("session", text) == 0
    assert store.list_events("session", "s1", event_type=text) == []
    assert store.list_audit(text) == [] and store.list_audit("default", subject=text) == []
    assert store.revoke_api_key(text) is None
    assert [r.run_id for r in store.list_runs(session_id="s1")] == ["r1"]  # the store still answers


def test_audit_entries_keep_unstorable_text_in_a_storable_form(store: Store) -> None:
    # A NUL in a path's id failed the whole audit batch on PostgreSQL, and each batch after it.
    stored: list[dict[str, object]] = []

    async def sink(entries: list[dict[str, object]]) -> None:
        store.append_audit(entries)
        stored.extend(entries)

    async def record() -> None:
        trail = AuditTrail(sink)
        trail.record(Principal("ann\x00", "default", ("admin",), "jwt"), "rest", "get_run", 404, target="a\x00\ud800b")
        trail.record(Principal("ann", "default", ("admin",), "jwt"), "rest", "get_run", 200, target="ok")
        await trail.flush()

    asyncio.run(record())
    kept = {(e["subject"], e["target"]) for e in store.list_audit("default")}  # ids of one ms: any order
    assert kept == {("ann\ufffd", "a\ufffd\ufffdb"), ("ann", "ok")}


@pytest.mark.parametrize("text", UNSTORABLE)
def test_unstorable_event_types_and_key_fields_are_refused_by_name(store: Store, text: str) -> None:
    with pytest.raises(InvalidRequestError, match="without NUL or lone surrogates"):
        check_custom_event(text, {})
    with pytest.raises(InvalidRequestError, match="The key's name"):
        create_api_key(store, "acme", ["admin"], text)
    assert store.api_keys() == []


def test_storable_text() -> None:
    assert storable("plain") and storable("héllo ✓") and storable("")
    assert not any(storable(t) for t in UNSTORABLE)
    assert storable_form("a\x00b\udcffc") == "a\ufffdb\ufffdc" and storable_form("héllo") == "héllo"
