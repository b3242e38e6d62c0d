"""The app the security tests serve with auth on (NEXUS_ENV=production)."""

from __future__ import annotations

import asyncio

from nexus_ray import Nexus, WorkflowBuilder

app = Nexus()


def double_plus_one() -> WorkflowBuilder:
    builder = WorkflowBuilder(description="Double x, then add one.")
    builder.add_node("PythonCodeNode", "double", {"code": "result = {'value': x * 2}"})
    builder.add_node("PythonCodeNode", "add_one", {"code": "result = {'value': value + 1}"})
    return builder.add_connection("double", "result.value", "add_one", "value")


app.register("double_plus_one", double_plus_one())
app.register("limited", double_plus_one(), rate_limit="30/minute")


@app.workflow
async def slow(seconds: float, secret_note: str = "") -> float:
    """Sleeps; its note is a secret that must never reach a log or the audit trail."""
    await asyncio.sleep(seconds)
    return seconds
