"""What a caller gets when an actor's constructor failed: Ray keeps only the text of the
error (its traceback), so the NexusError on its last line is raised again by name."""

from __future__ import annotations

import pytest
from ray.exceptions import ActorDiedError, RayTaskError

from nexus_ray import RuntimeUnavailableError
from nexus_ray.errors import ConfigurationError, StoreUnavailableError
from nexus_ray.runtime.errors import init_failure, translate_ray_error
from nexus_ray.store import StoreVersionError

REFUSED = (
    "Cannot connect to the PostgreSQL store at postgresql://app@db/nexus: connection failed: "
    'FATAL:  too many connections for role "app"'
)


def died_in_init(actor: str, last_line: str) -> ActorDiedError:
    """A dead actor's error as Ray builds it when ``actor.__init__`` raised."""
    trace = f'Traceback (most recent call last):\n  File "x.py", line 1, in __init__\n    open()\n{last_line}'
    task = RayTaskError(f"{actor}.__init__", trace, ValueError("cause"), proctitle=f"\x1b[36mray::{actor}\x1b[39m")
    return ActorDiedError(task)


def test_the_error_a_host_s_constructor_raised_is_raised_again() -> None:
    error = init_failure(died_in_init("RunHost", f"nexus_ray.errors.StoreUnavailableError: {REFUSED}"))
    assert isinstance(error, StoreUnavailableError) and str(error) == REFUSED


def test_the_innermost_error_wins_when_a_constructor_failed_creating_another_actor() -> None:
    """The PoolManager's constructor waits for its hosts': the host's error is inside its own."""
    host = died_in_init("RunHost", f"nexus_ray.errors.StoreUnavailableError: {REFUSED}")
    manager = died_in_init("PoolManager", f"ray.exceptions.ActorDiedError: {host}")
    error = translate_ray_error(manager)
    assert isinstance(error, StoreUnavailableError) and str(error) == REFUSED


def test_errors_of_other_modules_of_the_tree_are_found_by_name() -> None:
    newer = "The store (postgresql) has schema version 99, newer than this nexus_ray supports (8)."
    error = init_failure(died_in_init("SessionHost", f"nexus_ray.store.store.StoreVersionError: {newer}"))
    assert isinstance(error, StoreVersionError) and str(error) == newer
    bad = init_failure(died_in_init("SessionHost", "nexus_ray.errors.ConfigurationError: NEXUS_X is wrong"))
    assert isinstance(bad, ConfigurationError)


@pytest.mark.parametrize(
    "last_line",
    ["ValueError: not ours", "nexus_ray.errors.NoSuchError: a name the tree does not have"],
)
def test_a_constructor_error_that_is_no_nexus_error_stays_ray_s(last_line: str) -> None:
    dead = died_in_init("RunHost", last_line)
    assert init_failure(dead) is None
    error = translate_ray_error(dead)
    assert isinstance(error, RuntimeUnavailableError) and "A host is not available" in str(error)


def test_an_actor_that_died_after_it_started_is_unavailable() -> None:
    error = translate_ray_error(ActorDiedError())
    assert isinstance(error, RuntimeUnavailableError) and "Retry shortly" in str(error)
