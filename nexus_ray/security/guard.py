"""The Guard: what every channel of a process asks — who is calling, may they, are they
over a limit — and where actions are recorded. One per ingress replica (or stdio MCP
server); credentials are checked locally (JWT signatures; API keys against a copy of the
key table that follows the SecurityHost), so authentication costs no actor call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..errors import AuthenticationError, ConfigurationError, InputValidationError, NexusError, RuntimeUnavailableError
from ..settings import Settings
from . import api_keys
from .api_keys import ApiKey
from .audit import AuditTrail
from .jwt_auth import JwtVerifier
from .principal import ANONYMOUS, Principal
from .rate_limit import Grant, RateLimiter, RateSpec
from .rate_limit import headers as _headers
from .rbac import Rbac, load_roles

logger = logging.getLogger("nexus_ray.security")
KEYS_POLL_TIMEOUT_S = 15.0
MISSING = "No credential: send 'Authorization: Bearer <token or API key>' or 'X-API-Key: <key>'."


class SecurityCalls(Protocol):
    """What a Guard needs from the SecurityHost (SecurityClient)."""

    async def wait_keys(self, version: int, timeout_s: float) -> tuple[int, list[ApiKey]]: ...
    async def take(self, key: str, spec: RateSpec, wanted: int) -> Grant: ...
    async def append_audit(self, entries: list[dict[str, Any]]) -> None: ...
    async def list_audit(self, tenant: str, filters: dict[str, Any]) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class SecurityConfig:
    """The parsed security settings: the JWT verifier, the roles and the global rate
    limit. :meth:`load` validates all of them (a malformed one: ConfigurationError)."""

    jwt: JwtVerifier
    rbac: Rbac
    rate_limit: RateSpec | None

    @classmethod
    def load(cls, settings: Settings) -> SecurityConfig:
        """Parse and check the security settings."""
        jwt = JwtVerifier(
            settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
            settings.jwt_public_key,
            settings.jwt_jwks_file,
            settings.jwt_issuer,
            settings.jwt_audience,
            settings.jwt_leeway_s,
        )
        roles = dict(settings.roles)
        if settings.roles_file is not None:
            roles |= load_roles(settings.roles_file)
        rate_limit = RateSpec.parse(settings.rate_limit) if settings.rate_limit else None
        return cls(jwt, Rbac(roles), rate_limit)


class Guard:
    """Authentication, authorization, rate limits, input limits and audit for one process.

    Args:
        settings: The app's settings (auth, JWT, roles, limits, audit).
        calls: The SecurityHost; None only when auth, rate limits and audit are all off.
    """

    def __init__(self, settings: Settings, calls: SecurityCalls | None) -> None:
        self.enabled = settings.auth_enabled
        self.calls = calls
        config = SecurityConfig.load(settings)
        self.jwt, self.rbac, self.rate_limit = config.jwt, config.rbac, config.rate_limit
        self.max_input_depth = settings.max_input_depth
        self.public_docs = settings.public_docs or not self.enabled
        self.public_metrics = settings.public_metrics or not self.enabled
        needs_host = self.enabled or self.rate_limit is not None or settings.audit_enabled
        if needs_host and calls is None:
            raise ConfigurationError("Auth, rate limits and audit need the SecurityHost (start the app on Ray).")
        self.limiter = RateLimiter(calls.take) if calls is not None else None
        self.audit = AuditTrail(calls.append_audit if calls is not None and settings.audit_enabled else None)
        self._keys: dict[str, ApiKey] = {}
        self._keys_version = -1
        self._follower: asyncio.Task[None] | None = None

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> None:
        """Load the API keys (before serving) and follow their changes."""
        if not self.enabled or self.calls is None:
            return
        await self._load_keys(0.0)
        self._follower = asyncio.get_running_loop().create_task(self._follow_keys())

    async def stop(self) -> None:
        """Stop following keys; flush the audit trail."""
        if self._follower is not None:
            self._follower.cancel()
        await self.audit.close()

    async def _load_keys(self, timeout_s: float) -> None:
        assert self.calls is not None
        version, keys = await self.calls.wait_keys(self._keys_version, timeout_s)
        if version != self._keys_version:
            self._keys = {key.key_id: key for key in keys}
            self._keys_version = version

    async def _follow_keys(self) -> None:
        while True:
            try:
                await self._load_keys(KEYS_POLL_TIMEOUT_S)
            except NexusError:  # the SecurityHost restarts: keep the keys we have
                logger.warning("following API keys failed; retrying", exc_info=True)
                await asyncio.sleep(1.0)

    # -- authentication -------------------------------------------------------------------
    def authenticate(self, headers: Mapping[str, str]) -> Principal:
        """The caller of a request with these (lower-case) headers; 401 when auth is on and
        no valid credential is there."""
        if not self.enabled:
            return ANONYMOUS
        key = headers.get("x-api-key")
        if key is not None:
            return self._api_key(key.strip())
        authorization = headers.get("authorization")
        if authorization is None:
            raise AuthenticationError(MISSING, reason="missing")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationError("The Authorization header must be 'Bearer <token>'.", reason="malformed")
        return self.authenticate_token(token.strip())

    def authenticate_token(self, token: str) -> Principal:
        """The caller presenting ``token`` (a JWT or an API key)."""
        if not self.enabled:
            return ANONYMOUS
        if token.startswith(api_keys.PREFIX):
            return self._api_key(token)
        return self.jwt.verify(token)

    def _api_key(self, token: str) -> Principal:
        if self._keys_version < 0:
            raise RuntimeUnavailableError("API keys are not loaded yet; retry in a moment.")
        parts = api_keys.split(token)
        key = self._keys.get(parts[0]) if parts else None
        if parts is None or key is None or not api_keys.matches(key, parts[1]):
            raise AuthenticationError("The API key is not valid.", reason="invalid_key")
        if key.revoked_at is not None:
            raise AuthenticationError("The API key was revoked.", reason="revoked")
        return key.principal()

    # -- authorization and limits ----------------------------------------------------------
    def require(self, principal: Principal, action: str, workflow: str | None = None) -> None:
        """403 naming the missing permission unless ``principal`` may do ``action``."""
        self.rbac.require(principal, action, workflow)

    def allowed(self, principal: Principal, action: str, workflow: str | None = None) -> bool:
        """Whether ``principal`` may do ``action``."""
        return self.rbac.allowed(principal, action, workflow)

    async def admit(
        self, principal: Principal, workflow: str | None = None, workflow_limit: RateSpec | None = None
    ) -> dict[str, str]:
        """Spend a token of the principal's bucket (and of its bucket for ``workflow`` when
        that has a limit); 429 when empty. The RateLimit headers for the response."""
        if self.limiter is None:
            return {}
        who = f"{principal.tenant}/{principal.subject}"
        headers: dict[str, str] = {}
        if self.rate_limit is not None:
            grant = await self.limiter.admit(who, self.rate_limit, f"{principal.subject!r}")
            headers = _headers(self.rate_limit, grant)
        if workflow is not None and workflow_limit is not None:
            grant = await self.limiter.admit(
                f"{who}/{workflow}", workflow_limit, f"{principal.subject!r} on {workflow!r}"
            )
            headers = _headers(workflow_limit, grant)
        return headers

    def check_depth(self, value: Any, field: str) -> None:
        """422 when ``value`` nests deeper than ``max_input_depth``."""
        depth = _depth(value, self.max_input_depth + 1)
        if depth > self.max_input_depth:
            message = f"nests deeper than {self.max_input_depth} levels (NEXUS_MAX_INPUT_DEPTH)"
            raise InputValidationError([{"field": field, "message": message, "type": "too_deep"}])


def _depth(value: Any, stop: int) -> int:
    """Nesting depth of JSON-like ``value`` (scalars 0), counting no further than ``stop``."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            level += 1
            deepest = max(deepest, level)
            if deepest >= stop:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level) for child in children)
    return deepest
