"""Tenant-scoped ids. A run or session id of a tenant other than ``default`` ends in
``.<tag>``, the tag a digest of the tenant's name. Every channel checks that an id belongs
to the caller's tenant from the id alone, before any actor call, and answers an id of
another tenant exactly as an unknown id (404): nothing tells a caller it exists. The
store derives each row's tenant tag from its id, so listings filter on it too.
"""

from __future__ import annotations

import functools
import hashlib
import re

from ..errors import NotFoundError
from .principal import DEFAULT_TENANT

DEDICATED_SUFFIX = "-d"
_BASE_ID = r"[0-9a-f]{32}"  # runtime/ids.py new_run_id()
_TAG = r"(?:\.[0-9a-f]{16})?"  # scoped(): an id of a tenant other than "default"
RUN_ID = re.compile(_BASE_ID + _TAG)
SESSION_ID = re.compile(_BASE_ID + _TAG + f"(?:{re.escape(DEDICATED_SUFFIX)})?")
AUDIT_ID = re.compile(_BASE_ID)


@functools.lru_cache(maxsize=4096)  # asked several times per request: hash each tenant once
def tenant_tag(tenant: str) -> str:
    """The tag of ``tenant`` (empty for the default tenant, so its ids stay unchanged)."""
    if tenant == DEFAULT_TENANT:
        return ""
    return hashlib.sha256(f"nexus-tenant:{tenant}".encode()).hexdigest()[:16]


def scoped(base_id: str, tenant: str) -> str:
    """``base_id`` placed in ``tenant``."""
    tag = tenant_tag(tenant)
    return f"{base_id}.{tag}" if tag else base_id


def scoped_key(idempotency_key: str, tenant: str) -> str:
    """An idempotency key in ``tenant``'s key space (the same key in two tenants is two keys)."""
    tag = tenant_tag(tenant)
    return f"{tag}:{idempotency_key}" if tag else idempotency_key


def tag_of(resource_id: str) -> str:
    """The tenant tag an id carries ('' for the default tenant)."""
    core = resource_id.removesuffix(DEDICATED_SUFFIX)
    _, dot, tag = core.rpartition(".")
    return tag if dot else ""


def owns(tenant: str, resource_id: str) -> bool:
    """Whether ``resource_id`` belongs to ``tenant``."""
    return tag_of(resource_id) == tenant_tag(tenant)


def known_run(run_id: str) -> None:
    """404 for a ``run_id`` that no run can have, before it is routed anywhere: hashing it
    failed on a lone surrogate (500), PostgreSQL failed on a NUL (503)."""
    if not RUN_ID.fullmatch(run_id):
        raise NotFoundError(f"No run with id {run_id!r}.", run_id=run_id)


def known_session(session_id: str) -> None:
    """404 for a ``session_id`` that no session can have, before it is routed anywhere:
    besides the failures of :func:`known_run`, any id ending in ``-d`` started a dedicated
    session's actor (a worker process) to answer that it does not exist."""
    if not SESSION_ID.fullmatch(session_id):
        raise NotFoundError(f"No session with id {session_id!r} (it may have expired).", session_id=session_id)


def require_run(tenant: str, run_id: str) -> None:
    """404, worded as for an unknown run, unless ``run_id`` is the tenant's."""
    if not owns(tenant, run_id):
        raise NotFoundError(f"No run with id {run_id!r}.", run_id=run_id)


def require_session(tenant: str, session_id: str) -> None:
    """404, worded as for an unknown session, unless ``session_id`` is the tenant's."""
    if not owns(tenant, session_id):
        raise NotFoundError(f"No session with id {session_id!r} (it may have expired).", session_id=session_id)
