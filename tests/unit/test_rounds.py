"""A host's background rounds (runtime/rounds.py): a failed round is logged, the next runs."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from nexus_ray.errors import StoreUnavailableError
from nexus_ray.runtime.rounds import repeat


async def test_failed_rounds_are_logged_and_the_next_ones_run(caplog: pytest.LogCaptureFixture) -> None:
    outcomes = [StoreUnavailableError("The store failed: disk I/O error"), ValueError("a bug"), None]
    ran = 0

    async def one_round() -> None:
        nonlocal ran
        ran += 1
        outcome = outcomes[min(ran, len(outcomes)) - 1]
        if outcome is not None:
            raise outcome

    with caplog.at_level("WARNING", logger="nexus_ray.runtime"):
        task = asyncio.ensure_future(repeat("purging on h0", one_round, 0.01))
        while ran < 4:
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    outage, bug = caplog.records[:2]
    assert outage.getMessage() == "purging on h0: The store failed: disk I/O error; retrying"
    assert outage.exc_info is None  # an outage: one line, no traceback
    assert bug.getMessage() == "purging on h0 failed; retrying" and bug.exc_info is not None
    assert len(caplog.records) == 2  # the rounds after them succeeded
