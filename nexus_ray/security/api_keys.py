"""API keys: ``nxk_<id>_<secret>``. Only a SHA-256 digest of the secret is stored: the
secret is 256 random bits, so a fast digest is as safe as a slow password hash (nothing
to guess) and costs microseconds per request. The full key is shown once, at creation."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from .principal import Principal

PREFIX = "nxk_"


@dataclass(frozen=True)
class ApiKey:
    """An API key as stored (never the secret)."""

    key_id: str
    tenant: str
    roles: tuple[str, ...]
    name: str
    secret_hash: str = field(repr=False)
    created_at: float
    revoked_at: float | None = None

    def principal(self) -> Principal:
        """The principal this key authenticates."""
        return Principal(f"key:{self.key_id}", self.tenant, self.roles, "api_key")

    def to_dict(self) -> dict[str, object]:
        """As JSON, without the digest."""
        return {
            "key_id": self.key_id,
            "tenant": self.tenant,
            "roles": list(self.roles),
            "name": self.name,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def new_key() -> tuple[str, str, str]:
    """A new ``(key_id, full key, secret digest)``."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{PREFIX}{key_id}_{secret}", digest(secret)


def digest(secret: str) -> str:
    """The stored digest of a key's secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def split(token: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of something shaped like an API key, else None."""
    if not token.startswith(PREFIX):
        return None
    key_id, sep, secret = token[len(PREFIX) :].partition("_")
    return (key_id, secret) if sep and key_id and secret else None


def matches(key: ApiKey, secret: str) -> bool:
    """Whether ``secret`` is this key's (constant time)."""
    return hmac.compare_digest(key.secret_hash, digest(secret))
