"""The one exception tree of nexus_ray, and how each error maps onto every channel.

    NexusError                      500  MCP -32603  exit 1
    ├── WorkflowError               400  MCP -32602  exit 2   a workflow definition is invalid
    ├── InvalidRequestError         400  MCP -32602  exit 3   malformed request (bad JSON, bad envelope)
    │   ├── InputValidationError    422  MCP -32602  exit 3   inputs missing, unknown or mistyped
    │   └── PayloadTooLargeError    413  MCP -32602  exit 3
    ├── NotFoundError               404  MCP -32602  exit 4
    │   └── WorkflowNotFoundError   404  MCP -32602  exit 4
    ├── ConflictError               409  MCP -32600  exit 6   e.g. a duplicate workflow name
    │   └── PreconditionFailedError 412  MCP -32600  exit 6   If-Match names a stale version
    ├── RuntimeUnavailableError     503  MCP -32603  exit 5   Ray / Serve / host pool not reachable
    │   ├── ResourcesUnavailableError   no live node has what a node's resources= asks for
    │   └── StoreUnavailableError       the store failed a call (connection lost, disk full)
    ├── ConfigurationError          500  MCP -32603  exit 2   settings that cannot work (refuses to start)
    ├── AuthenticationError         401  MCP -32001  exit 9   no valid credential
    ├── PermissionDeniedError       403  MCP -32001  exit 9   a permission is missing
    └── RateLimitedError            429  MCP -32002  exit 10  over a rate limit, or too many runs

Channels translate errors with :func:`http_status`, :func:`mcp_code` and :func:`exit_code`;
they never invent their own error shapes. Every error carries structured fields
(:attr:`NexusError.details`) and a message that says what to do next.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar


class NexusError(Exception):
    """Base of every error nexus_ray raises on purpose.

    Args:
        message: What went wrong and what to do about it.
        **details: Structured fields (ids, names, offending values) for clients.
    """

    title: ClassVar[str] = "Internal error"
    http_status: ClassVar[int] = 500
    mcp_code: ClassVar[int] = -32603
    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross Ray process boundaries; keep their structured fields.
        return (_rebuild_error, (type(self), self.message, self.details))

    def headers(self) -> dict[str, str]:
        """HTTP headers that go with this error (e.g. Retry-After)."""
        return {}

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """Render as an RFC 9457 problem document (its own members win over details)."""
        problem: dict[str, Any] = dict(self.details)
        problem.update(
            type=f"https://nexus-ray.dev/problems/{_slug(type(self).__name__)}",
            title=self.title,
            status=self.http_status,
            detail=self.message,
        )
        if instance:
            problem["instance"] = instance
        return problem


def _rebuild_error(cls: type[NexusError], message: str, details: dict[str, Any]) -> NexusError:
    error = cls.__new__(cls)
    NexusError.__init__(error, message, **details)
    return error


def _slug(name: str) -> str:
    out = "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")
    return out.removesuffix("-error")


class WorkflowError(NexusError):
    """A workflow definition is invalid (raised by the builder and by registration)."""

    title = "Invalid workflow"
    http_status = 400
    mcp_code = -32602
    exit_code = 2


class InvalidRequestError(NexusError):
    """A request could not be understood (malformed JSON, wrong envelope)."""

    title = "Bad request"
    http_status = 400
    mcp_code = -32602
    exit_code = 3


class InputValidationError(InvalidRequestError):
    """Workflow inputs are missing, unknown or of the wrong type.

    ``details["errors"]`` lists each problem as ``{"field", "message", "type"}``.
    """

    title = "Invalid inputs"
    http_status = 422

    def __init__(self, errors: list[dict[str, Any]], workflow: str | None = None) -> None:
        fields = ", ".join(str(e["field"]) for e in errors)
        if workflow is None:  # a route's own parameters, not a workflow's inputs
            message = f"Invalid request: {fields}. See 'errors' for each field; /docs describes every route."
        else:
            message = (
                f"Invalid inputs for workflow {workflow!r}: {fields}. "
                "See 'errors' for each field; GET /workflows lists the input schema."
            )
        super().__init__(message, workflow=workflow, errors=errors)

    @property
    def errors(self) -> list[dict[str, Any]]:
        """One entry per offending field."""
        return list(self.details.get("errors", []))


class PayloadTooLargeError(InvalidRequestError):
    """The request body is larger than the configured limit."""

    title = "Payload too large"
    http_status = 413


class NotFoundError(NexusError):
    """Something addressed by name or id does not exist."""

    title = "Not found"
    http_status = 404
    mcp_code = -32602
    exit_code = 4


class WorkflowNotFoundError(NotFoundError):
    """No workflow is registered under the name."""

    title = "Workflow not found"


class ConflictError(NexusError):
    """The request conflicts with existing state (e.g. a name already registered)."""

    title = "Conflict"
    http_status = 409
    mcp_code = -32600
    exit_code = 6


class PreconditionFailedError(ConflictError):
    """A conditional request (If-Match) names a version that is no longer current."""

    title = "Precondition failed"
    http_status = 412


class RuntimeUnavailableError(NexusError):
    """Ray, Serve or the host pool cannot be reached, or the app is not started."""

    title = "Service unavailable"
    http_status = 503
    exit_code = 5


class ResourcesUnavailableError(RuntimeUnavailableError):
    """No node of the Ray cluster has the resources a node asks for (and none joined in
    time): the node fails with this instead of waiting for ever."""


class StoreUnavailableError(RuntimeUnavailableError):
    """The store failed a call (a lost or refused PostgreSQL connection, a full or locked
    disk): nothing of it was written; retry later. A type of its own, because it crosses
    Ray's process boundaries without its cause, and a host must still tell it apart
    (a run whose write failed waits for the store instead of failing its caller)."""


class ConfigurationError(NexusError):
    """The settings cannot work (e.g. auth on and no credential configured); the server
    refuses to start and the message says what to set."""

    title = "Configuration error"
    exit_code = 2


class AuthenticationError(NexusError):
    """No valid credential was presented."""

    title = "Unauthorized"
    http_status = 401
    mcp_code = -32001
    exit_code = 9

    def headers(self) -> dict[str, str]:
        return {"www-authenticate": 'Bearer realm="nexus_ray"'}


class PermissionDeniedError(NexusError):
    """The credential is valid but lacks a permission."""

    title = "Forbidden"
    http_status = 403
    mcp_code = -32001
    exit_code = 9


class RateLimitedError(NexusError):
    """Over a rate limit (or a tenant's concurrent-run limit); retry after ``retry_after_s``.

    Args:
        message: Which limit, and when to retry.
        retry_after_s: Seconds until a retry can succeed (Retry-After, rounded up).
        limit: The bucket's capacity (RateLimit-Limit), when a bucket applies.
        reset_s: Seconds until the bucket is full again (RateLimit-Reset).
    """

    title = "Too many requests"
    http_status = 429
    mcp_code = -32002
    exit_code = 10

    def __init__(
        self, message: str, retry_after_s: float, limit: int | None = None, reset_s: float | None = None, **details: Any
    ) -> None:
        super().__init__(message, retry_after_s=retry_after_s, limit=limit, reset_s=reset_s, **details)

    def headers(self) -> dict[str, str]:
        retry = max(1, math.ceil(float(self.details["retry_after_s"])))
        headers = {"retry-after": str(retry)}
        if self.details.get("limit") is not None:
            headers["ratelimit-limit"] = str(self.details["limit"])
            headers["ratelimit-remaining"] = "0"
            headers["ratelimit-reset"] = str(max(1, math.ceil(float(self.details.get("reset_s") or retry))))
        return headers


class RunFailedError(NexusError):
    """A run ended ``failed`` (the CLI's exit code; over HTTP a failed run is a 200)."""

    title = "Run failed"
    exit_code = 7


class RunCancelledError(NexusError):
    """A run ended ``cancelled`` (the CLI's exit code)."""

    title = "Run cancelled"
    exit_code = 8


def http_status(error: BaseException) -> int:
    """HTTP status for any exception; unknown exceptions are server errors."""
    return error.http_status if isinstance(error, NexusError) else 500


def mcp_code(error: BaseException) -> int:
    """JSON-RPC error code for the MCP channel."""
    return error.mcp_code if isinstance(error, NexusError) else -32603


def exit_code(error: BaseException) -> int:
    """Process exit code for the CLI."""
    return error.exit_code if isinstance(error, NexusError) else 1
