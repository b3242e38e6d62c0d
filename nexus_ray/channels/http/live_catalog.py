"""The workflows a replica serves, kept current from the catalog actor: registering or
removing a workflow while serving changes the routes and MCP tools in place (no redeploy,
so no connection is cut) and tells listening MCP clients ``tools/list_changed``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.subscriptions import ToolsListChanged

from ...registry import RegisteredWorkflow

logger = logging.getLogger("nexus_ray.http")
WATCH_POLL_S = 30.0
# (known version, timeout_s) -> (current version, entries) as soon as the version moves
CatalogChanges = Callable[[int, float], Awaitable[tuple[int, dict[str, RegisteredWorkflow]]]]
Apply = Callable[[dict[str, RegisteredWorkflow]], None]


async def follow_catalog(changes: CatalogChanges, apply: Apply, bus: InMemorySubscriptionBus) -> None:
    """Long-poll the catalog; on each change ``apply`` the new entries and publish
    ``ToolsListChanged``. Runs until cancelled."""
    version, entries = await changes(-1, 0.0)
    apply(entries)  # anything registered between this replica's deploy and now
    while True:
        try:
            current, entries = await changes(version, WATCH_POLL_S)
        except Exception:  # the catalog actor restarts: look again shortly
            logger.warning("watching the workflow catalog failed; retrying", exc_info=True)
            await asyncio.sleep(1.0)
            continue
        if current != version:
            version = current
            apply(entries)
            await bus.publish(ToolsListChanged())


def diff(current: dict[str, Any], entries: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(names to remove, names to add or replace) to go from ``current`` to ``entries``."""
    removed = [name for name in current if name not in entries]
    added = [name for name, item in entries.items() if current.get(name) is not item]
    return removed, added
