"""Operator actions on the store, without a running server: API keys (``nexus keys``,
``app.create_api_key``) and the start-up check that auth can work."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import ConfigurationError, InvalidRequestError, NotFoundError
from ..settings import Settings
from ..store import Store, open_store
from ..stored_text import storable
from .api_keys import ApiKey, new_key
from .guard import SecurityConfig


@contextmanager
def admin_store(settings: Settings) -> Iterator[Store]:
    """The app's store (NEXUS_STORE_URL, else SQLite under NEXUS_HOME), closed afterwards."""
    store = open_store(settings.store_url, settings.home)
    try:
        yield store
    finally:
        store.close()


def create_api_key(store: Store, tenant: str, roles: list[str], name: str = "") -> dict[str, Any]:
    """A new key for ``tenant`` with ``roles``: its record plus ``api_key``, the only time
    the full key is shown."""
    if not isinstance(tenant, str) or not tenant.strip() or tenant == "-":
        raise InvalidRequestError("A key needs a tenant (a non-empty name).", field="tenant")
    if not roles or not all(isinstance(r, str) and r.strip() for r in roles):
        raise InvalidRequestError("A key needs at least one role (e.g. admin, viewer).", field="roles")
    for field, text in (("tenant", tenant), ("name", name), *(("roles", r) for r in roles)):
        if not storable(text):
            raise InvalidRequestError(f"The key's {field} {text!r} holds a NUL or an undecodable byte.", field=field)
    key_id, full_key, secret_hash = new_key()
    key = ApiKey(key_id, tenant.strip(), tuple(r.strip() for r in roles), name, secret_hash, time.time())
    store.add_api_key(key)
    return {**key.to_dict(), "api_key": full_key}


def list_api_keys(store: Store) -> list[dict[str, Any]]:
    """Every key (never a secret or its digest)."""
    return [key.to_dict() for key in store.api_keys()]


def revoke_api_key(store: Store, key_id: str) -> dict[str, Any]:
    """Revoke a key; running servers refuse it within a second."""
    key = store.revoke_api_key(key_id)
    if key is None:
        raise NotFoundError(f"No API key with id {key_id!r} (nexus keys list shows them).", key_id=key_id)
    return key.to_dict()


def check_security(settings: Settings) -> None:
    """Refuse to start with settings that cannot work: malformed JWT keys, roles or rate
    limits; or auth on with no way to authenticate (names what to set)."""
    config = SecurityConfig.load(settings)  # validates every part
    if not settings.auth_enabled or config.jwt.configured:
        return
    with admin_store(settings) as store:
        if any(key.revoked_at is None for key in store.api_keys()):
            return
    why = "NEXUS_ENV=production" if settings.auth is None else "auth=True"
    raise ConfigurationError(
        f"Auth is on ({why}) but no credential is configured. Set NEXUS_JWT_SECRET (HS256, at least 32 "
        "bytes), NEXUS_JWT_PUBLIC_KEY or NEXUS_JWT_JWKS_FILE (RS256/ES256), or create an API key with "
        "'nexus keys create --tenant TENANT --role admin' (same NEXUS_HOME or NEXUS_STORE_URL)."
    )
