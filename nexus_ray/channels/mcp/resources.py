"""MCP resources: nexus://workflows, nexus://workflows/{name}, nexus://runs/{id},
nexus://sessions/{id} (JSON)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import mcp_types as types

from ...errors import NotFoundError
from ...registry import RegisteredWorkflow, not_found
from ..secured import PrincipalRuns, PrincipalSessions

JSON = "application/json"


def list_resources(catalog: Mapping[str, RegisteredWorkflow]) -> list[types.Resource]:
    """The workflow list and each workflow."""
    resources = [types.Resource(name="workflows", uri="nexus://workflows", mime_type=JSON, description="All workflows")]
    for name, item in catalog.items():
        resources.append(
            types.Resource(
                name=f"workflow {name}", uri=f"nexus://workflows/{name}", mime_type=JSON, description=item.description
            )
        )
    return resources


def list_templates() -> list[types.ResourceTemplate]:
    """Runs and sessions, by id."""
    return [
        types.ResourceTemplate(name="run", uri_template="nexus://runs/{run_id}", mime_type=JSON, description="A run"),
        types.ResourceTemplate(
            name="session", uri_template="nexus://sessions/{session_id}", mime_type=JSON, description="A session"
        ),
    ]


async def read_resource(
    uri: str, catalog: Mapping[str, RegisteredWorkflow], runner: PrincipalRuns, sessions: PrincipalSessions
) -> types.ReadResourceResult:
    """The JSON document at ``uri``."""
    value = await _value(uri, catalog, runner, sessions)
    text = types.TextResourceContents(uri=uri, mime_type=JSON, text=json.dumps(value, default=str))
    contents: list[types.TextResourceContents | types.BlobResourceContents] = [text]
    return types.ReadResourceResult(contents=contents)


async def _value(
    uri: str, catalog: Mapping[str, RegisteredWorkflow], runner: PrincipalRuns, sessions: PrincipalSessions
) -> Any:
    if uri == "nexus://workflows":
        return [item.summary() for item in catalog.values()]
    kind, _, key = uri.removeprefix("nexus://").partition("/")
    if kind == "workflows" and key:
        if key not in catalog:
            raise not_found(key, list(catalog))
        return catalog[key].detail()
    if kind == "runs" and key:
        return await runner.get_run(key)
    if kind == "sessions" and key:
        return await sessions.get(key)
    raise NotFoundError(
        f"No resource {uri!r}: use nexus://workflows, nexus://workflows/NAME, nexus://runs/ID or nexus://sessions/ID.",
        uri=uri,
    )
