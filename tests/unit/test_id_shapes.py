"""An id that no run or session can have is answered 404 before it is routed to a host:
hashing a lone surrogate failed (500), a NUL failed on PostgreSQL (503), and any id
ending in "-d" started a dedicated session's actor (a worker process) only to say that
the session does not exist. Without Ray: the refusal comes before any actor call."""

from __future__ import annotations

import asyncio

import pytest

from nexus_ray import Nexus
from nexus_ray.errors import NotFoundError
from nexus_ray.runtime.pool import PoolClient
from nexus_ray.runtime.sessions_client import SessionsClient
from nexus_ray.security.tenancy import DEDICATED_SUFFIX, known_run, known_session, scoped

JUNK = ["nope", "nope-d", "a\x00b", "\ud800", "0" * 32 + "\n", "0" * 31 + "g", ""]


class NoHosts(dict[str, object]):
    """Members of a pool (one, never to be called) that fail the test when a call is
    routed to one of them."""

    def __init__(self) -> None:
        super().__init__({"host-0": None})

    def __getitem__(self, key: str) -> object:
        raise AssertionError(f"routed to a host: {key!r}")


@pytest.mark.parametrize("junk", JUNK[:-1])
def test_junk_ids_are_404_before_any_routing(junk: str) -> None:
    sessions = SessionsClient(NoHosts())  # type: ignore[arg-type]
    sessions.host_for = lambda session_id: pytest.fail(f"routed {session_id!r}")  # type: ignore[method-assign]
    runs = PoolClient(NoHosts())  # type: ignore[arg-type]
    with pytest.raises(NotFoundError, match="No session with id"):
        asyncio.run(sessions.get(junk))
    with pytest.raises(NotFoundError, match="No session with id"):
        sessions.call_blocking("patch", junk, junk, {"n": 1}, None)
    for call in (runs.get_run(junk), runs.cancel(junk), runs.wait_events(junk, 0, 1.0)):
        with pytest.raises(NotFoundError, match="No run with id"):
            asyncio.run(call)
    with pytest.raises(NotFoundError, match="No session with id"):
        asyncio.run(runs.execute_in_session("double_plus_one", {"x": 1}, junk, wait=True))
    with pytest.raises(NotFoundError, match="No session with id"):
        runs.run_call("double_plus_one", {"x": 1}, True, "key-1", junk)  # the Python API's runs
    with pytest.raises(NotFoundError, match="No run with id"):
        Nexus().get_run(junk)  # before the runtime is started


def test_ids_the_runtime_makes_pass() -> None:
    base = "0123456789abcdef" * 2
    for run_id in (base, scoped(base, "acme")):
        known_run(run_id)
        known_session(run_id)
        known_session(run_id + DEDICATED_SUFFIX)
    for junk in JUNK:
        with pytest.raises(NotFoundError):
            known_run(junk)
        with pytest.raises(NotFoundError):
            known_session(junk)
