"""The CLI's HTTP client of a running server (httpx; never imports Ray)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
from httpx_sse import connect_sse

from .. import __version__
from ..errors import (
    AuthenticationError,
    ConflictError,
    InputValidationError,
    InvalidRequestError,
    NexusError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitedError,
    RuntimeUnavailableError,
)

_BY_STATUS: dict[int, type[NexusError]] = {
    400: InvalidRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    412: PreconditionFailedError,
    413: PayloadTooLargeError,
    503: RuntimeUnavailableError,
}
# (connect, read, write, pool): a followed stream may be quiet for long. A tuple, not an
# httpx.Timeout, because httpx2's clients (Starlette's TestClient's, where it is installed)
# refuse httpx's Timeout objects and both take a tuple.
FOLLOW_TIMEOUT = (30.0, None, 30.0, 30.0)


class ServerClient:
    """Calls a nexus_ray server; every failure is a NexusError saying what to do."""

    def __init__(self, url: str, token: str | None = None, timeout_s: float = 300.0) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": f"nexus-cli/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        """Close the connection pool."""
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """``method path``; the JSON body (None for 204)."""
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        if response.status_code >= 400:
            raise error_from_response(response)
        return response.json() if response.content else None

    def events(self, path: str, *, method: str = "GET", **kwargs: Any) -> Iterator[dict[str, Any]]:
        """The events of an SSE stream (ends when the server ends it)."""
        try:
            with connect_sse(self.http, method, path, timeout=FOLLOW_TIMEOUT, **kwargs) as source:
                if source.response.status_code >= 400:
                    source.response.read()
                    raise error_from_response(source.response)
                for sse in source.iter_sse():
                    if sse.data:
                        yield json.loads(sse.data)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: Exception) -> RuntimeUnavailableError:
        return RuntimeUnavailableError(
            f"Server unreachable at {self.url} ({type(exc).__name__}). Start one with `nexus serve APP`, "
            "or point --url / NEXUS_URL at it.",
            url=self.url,
        )


def error_from_response(response: httpx.Response) -> NexusError:
    """The NexusError of an error response (problem+json when the server sent one)."""
    try:
        problem = response.json()
    except ValueError:
        problem = {"detail": response.text.strip()[:200] or response.reason_phrase}
    if not isinstance(problem, dict):
        problem = {"detail": str(problem)}
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {response.status_code}")
    details = {k: v for k, v in problem.items() if k not in ("type", "title", "status", "detail", "instance")}
    if response.status_code == 422 and isinstance(problem.get("errors"), list):
        error = InputValidationError(problem["errors"], problem.get("workflow"))
        fields = "; ".join(f"{e.get('field')}: {e.get('message')}" for e in problem["errors"])
        error.message = f"Invalid inputs for {problem.get('workflow')!r}: {fields}. `nexus describe NAME` shows them."
        return error
    if response.status_code == 429:
        retry = float(details.pop("retry_after_s", None) or response.headers.get("retry-after") or 1)
        return RateLimitedError(detail, retry_after_s=retry, **details)
    cls = _BY_STATUS.get(response.status_code, NexusError)
    return cls(detail, **details)
