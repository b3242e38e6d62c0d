"""Built-in tools for agents: run status, cancel a run, get and update a session."""

from __future__ import annotations

from typing import Any

import mcp_types as types

from ...errors import InvalidRequestError
from ..secured import PrincipalRuns, PrincipalSessions

_RUN_ID = {"run_id": {"type": "string", "description": "A run id (from a tool result's _meta nexus/run_id)."}}
_SESSION_ID = {"session_id": {"type": "string", "description": "A Nexus session id."}}


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


BUILTIN_TOOLS = (
    types.Tool(
        name="nexus_run_status",
        description="A run's status, per-node status and timings, outputs or error.",
        input_schema=_schema(_RUN_ID, ["run_id"]),
    ),
    types.Tool(
        name="nexus_cancel_run",
        description="Cancel a running run at once; its final state.",
        input_schema=_schema(_RUN_ID, ["run_id"]),
    ),
    types.Tool(
        name="nexus_get_session",
        description="A session's state and version (shared with REST, the CLI and Python).",
        input_schema=_schema(_SESSION_ID, ["session_id"]),
    ),
    types.Tool(
        name="nexus_update_session",
        description="Change a session's state with a JSON merge patch (null removes a key); "
        "with if_version, only if the session is still at that version.",
        input_schema=_schema(
            {
                **_SESSION_ID,
                "patch": {"type": "object", "description": "JSON merge patch (RFC 7396)."},
                "if_version": {"type": "integer", "minimum": 1},
            },
            ["session_id", "patch"],
        ),
    ),
)


async def call_builtin(name: str, arguments: dict[str, Any], runner: PrincipalRuns, sessions: PrincipalSessions) -> Any:
    """Run the built-in tool ``name``."""
    if name == "nexus_run_status":
        return await runner.get_run(_text(arguments, "run_id"))
    if name == "nexus_cancel_run":
        return await runner.cancel(_text(arguments, "run_id"))
    if name == "nexus_get_session":
        return await sessions.get(_text(arguments, "session_id"))
    patch = arguments.get("patch")
    if not isinstance(patch, dict):
        raise InvalidRequestError("patch must be a JSON object (a merge patch).", field="patch")
    version = arguments.get("if_version")
    if version is not None and not isinstance(version, int):
        raise InvalidRequestError("if_version must be an integer.", field="if_version")
    return await sessions.patch(_text(arguments, "session_id"), patch, version)


def _text(arguments: dict[str, Any], name: str) -> str:
    value = arguments.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidRequestError(f"{name} is required (a string).", field=name)
    return value
