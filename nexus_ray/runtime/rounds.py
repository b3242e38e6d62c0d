"""A host's background rounds (lease renewal, purges, passivation), repeated for ever.

A round that fails is logged and the next one runs on time. A store outage fails every
round until it ends, so it gets one line a round naming it, not a traceback each time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ..errors import StoreUnavailableError

logger = logging.getLogger("nexus_ray.runtime")


async def repeat(what: str, one_round: Callable[[], Awaitable[object]], every_s: float) -> None:
    """Run ``one_round()`` now and then every ``every_s`` until cancelled; ``what`` names
    it in the log ("lease maintenance on run-host-0")."""
    while True:
        try:
            await one_round()
        except StoreUnavailableError as exc:
            logger.warning("%s: %s; retrying", what, exc)
        except Exception:
            logger.exception("%s failed; retrying", what)
        await asyncio.sleep(every_s)
