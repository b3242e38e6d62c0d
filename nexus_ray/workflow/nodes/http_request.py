"""HTTPRequestNode: one HTTP call with httpx (async), with retries on transport errors."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from ..fields import InputField
from ..node import Node, NodeContext, register_node_type

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class HTTPRequestNode(Node):
    """Make an HTTP request.

    Inputs: url, method (GET), headers, params, json_data, timeout (s, 30), retries (0;
    extra attempts on connection errors and timeouts, with backoff).
    Output: ``{"status": int, "headers": {...}, "body": JSON when JSON else text}``.
    A response with any status is an output, not a failure: branch on ``status``.
    """

    idempotent = False

    def declare_inputs(self) -> dict[str, InputField]:
        return {
            "url": InputField("url", str, description="Absolute http(s) URL"),
            "method": InputField("method", str, "GET", extra_schema={"enum": sorted(_METHODS)}),
            "headers": InputField("headers", dict[str, str] | None, None),
            "params": InputField("params", dict[str, Any] | None, None),
            "json_data": InputField("json_data", Any, None),
            "timeout": InputField("timeout", float, 30.0),
            "retries": InputField("retries", int, 0),
        }

    def output_ports(self) -> frozenset[str]:
        return frozenset({"status", "headers", "body"})

    def output_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "status": {"type": "integer"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "body": {},
            },
            "required": ["status", "headers", "body"],
        }

    async def run(self, inputs: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        method = str(inputs.get("method", "GET")).upper()
        if method not in _METHODS:
            raise ValueError(f"unsupported HTTP method {method!r}; use one of {sorted(_METHODS)}")
        retries = max(0, int(inputs.get("retries", 0)))
        async with httpx.AsyncClient(timeout=float(inputs.get("timeout", 30.0))) as client:
            for attempt in range(retries + 1):
                try:
                    response = await client.request(
                        method,
                        inputs["url"],
                        headers=inputs.get("headers"),
                        params=inputs.get("params"),
                        json=inputs.get("json_data"),
                    )
                    return _response_output(response)
                except httpx.TransportError:
                    if attempt == retries:
                        raise
                    await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
        raise AssertionError("unreachable")


def _response_output(response: httpx.Response) -> dict[str, Any]:
    body: Any = response.text
    if "json" in response.headers.get("content-type", ""):
        try:
            body = response.json()
        except ValueError:
            body = response.text
    return {"status": response.status_code, "headers": dict(response.headers), "body": body}


register_node_type(HTTPRequestNode)
