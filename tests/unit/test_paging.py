"""The listing arguments every channel checks before any actor call (runtime/paging.py)."""

from __future__ import annotations

from typing import Any

import pytest

from nexus_ray import InvalidRequestError, Nexus, RunStatus
from nexus_ray.runtime.ids import new_run_id
from nexus_ray.runtime.paging import EVENTS_MAX, PAGE_MAX, event_after, page_cursor, page_limit, run_status
from nexus_ray.security.tenancy import DEDICATED_SUFFIX, scoped


@pytest.mark.parametrize("limit", [1, 50, PAGE_MAX])
def test_a_page_size_in_range_is_kept(limit: int) -> None:
    assert page_limit(limit) == limit


@pytest.mark.parametrize("limit", [0, -1, PAGE_MAX + 1, True, "5", 2.0, None])
def test_a_page_size_out_of_range_or_not_a_whole_number_is_refused_by_name(limit: Any) -> None:
    with pytest.raises(InvalidRequestError, match=r"limit must be a whole number from 1 to 500") as info:
        page_limit(limit)
    assert info.value.details["field"] == "limit"


def test_events_have_their_own_page_size() -> None:
    assert page_limit(EVENTS_MAX, EVENTS_MAX) == EVENTS_MAX
    with pytest.raises(InvalidRequestError, match="from 1 to 1000"):
        page_limit(EVENTS_MAX + 1, EVENTS_MAX)


def test_every_id_the_api_hands_out_is_a_cursor_of_its_kind() -> None:
    run_id = new_run_id()
    tenant_run = scoped(new_run_id(), "acme")
    assert page_cursor(None, "run") is None
    assert page_cursor(run_id, "run") == run_id
    assert page_cursor(tenant_run, "run") == tenant_run
    assert page_cursor(tenant_run + DEDICATED_SUFFIX, "session") == tenant_run + DEDICATED_SUFFIX
    assert page_cursor(run_id, "audit entry") == run_id


@pytest.mark.parametrize(
    ("cursor", "kind"),
    [
        ("zz", "run"),  # sorts after every id: read as "from the start" before
        ("", "run"),
        (new_run_id().upper(), "run"),
        (new_run_id() + DEDICATED_SUFFIX, "run"),  # only sessions are dedicated
        (scoped(new_run_id(), "acme"), "audit entry"),  # audit ids carry no tenant tag
        (12, "session"),
    ],
)
def test_anything_else_is_refused_as_a_cursor(cursor: Any, kind: str) -> None:
    with pytest.raises(InvalidRequestError, match=f"is not a {kind} id; pass the next_cursor") as info:
        page_cursor(cursor, kind)
    assert info.value.details["field"] == "cursor"


def test_a_status_filter_is_a_run_status() -> None:
    assert run_status(None) is None
    assert run_status("failed") == "failed"
    assert run_status(RunStatus.CANCELLED) == "cancelled"
    with pytest.raises(InvalidRequestError, match="status must be one of pending, running, completed, failed"):
        run_status("done")


@pytest.mark.parametrize("after", [-1, True, "3", 1.5])
def test_an_event_sequence_number_is_a_whole_number_from_0(after: Any) -> None:
    with pytest.raises(InvalidRequestError, match="after must be a whole number >= 0"):
        event_after(after)
    assert event_after(0) == 0 and event_after(7) == 7


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda app: app.list_runs(limit=0), "limit"),
        (lambda app: app.list_runs(limit=-1), "limit"),  # SQLite's LIMIT -1: no limit at all
        (lambda app: app.list_runs(status="bogus"), "status"),
        (lambda app: app.list_runs(cursor="zz"), "cursor"),
        (lambda app: app.list_sessions(limit=10**9), "limit"),
        (lambda app: app.list_sessions(cursor="zz"), "cursor"),
        (lambda app: app.get_events(limit=0), "limit"),
        (lambda app: app.get_events(after=-5), "after"),
    ],
)
def test_the_python_api_refuses_bad_listing_arguments_before_starting_anything(
    call: Any, named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = Nexus()

    def no_runtime() -> None:
        raise AssertionError("a bad argument must be refused before the runtime is reached")

    monkeypatch.setattr(app, "_ensure_runtime", no_runtime)
    with pytest.raises(InvalidRequestError) as info:
        call(app)
    assert info.value.details["field"] == named
