"""The store's security tables: API keys (digests only) and the audit trail."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

from ..runtime.ids import time_prefix
from ..security.api_keys import ApiKey
from ..stored_text import all_storable, storable
from .backends import Backend

T = TypeVar("T")
_KEY_COLUMNS = "key_id, tenant, roles, name, secret_hash, created_at, revoked_at"
AUDIT_COLUMNS = ("audit_id", "at", "tenant", "subject", "channel", "action", "target", "workflow", "outcome", "status")


class SecurityTables:
    """Mixed into :class:`Store` (which provides ``backend`` and ``_transact``)."""

    backend: Backend
    _transact: Callable[[Callable[[], Any]], Any]

    # -- API keys -------------------------------------------------------------------------
    def add_api_key(self, key: ApiKey) -> None:
        """Store a new key (its digest, never the secret)."""
        self._transact(
            lambda: self.backend.execute(
                f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (key.key_id, key.tenant, json.dumps(list(key.roles)), key.name, key.secret_hash, key.created_at),
            )
        )

    def api_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        rows = self._transact(
            lambda: self.backend.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_at, key_id")
        )
        return [_key(row) for row in rows]

    def revoke_api_key(self, key_id: str) -> ApiKey | None:
        """Revoke a key (at once, for good); the key, or None when there is no such key."""
        if not storable(key_id):
            return None

        def revoke() -> list[tuple[Any, ...]]:
            self.backend.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (time.time(), key_id)
            )
            return self.backend.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,))

        rows = self._transact(revoke)
        return _key(rows[0]) if rows else None

    def api_keys_fingerprint(self) -> str:
        """Changes whenever a key is added or revoked (cheap to poll)."""
        rows = self._transact(
            lambda: self.backend.execute("SELECT COUNT(*), MAX(created_at), MAX(revoked_at) FROM api_keys")
        )
        return repr(tuple(rows[0]))

    # -- audit ------------------------------------------------------------------------------
    def append_audit(self, entries: list[dict[str, Any]]) -> None:
        """Store audit entries (dicts with AUDIT_COLUMNS, plus an optional ``detail``)."""
        columns = ", ".join((*AUDIT_COLUMNS, "detail"))
        marks = ", ".join("?" * (len(AUDIT_COLUMNS) + 1))
        rows = [
            (*(e.get(c) for c in AUDIT_COLUMNS), json.dumps(e["detail"]) if e.get("detail") else None) for e in entries
        ]

        def insert() -> None:
            for row in rows:
                self.backend.execute(f"INSERT INTO audit ({columns}) VALUES ({marks})", row)

        self._transact(insert)

    def purge_audit(self, before: float, limit: int = 1000) -> int:
        """Delete up to ``limit`` audit entries recorded before ``before`` (Unix time),
        oldest first; how many. Audit ids begin with their time (runtime/ids.py), so this
        walks the primary key only as far as the cutoff."""
        cutoff = time_prefix(before)
        return self._transact(
            lambda: self.backend.changes(
                "DELETE FROM audit WHERE audit_id IN"
                " (SELECT audit_id FROM audit WHERE audit_id < ? ORDER BY audit_id LIMIT ?)",
                (cutoff, limit),
            )
        )

    def list_audit(
        self,
        tenant: str,
        *,
        subject: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        since: float | None = None,
        before: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """A tenant's audit entries, newest first; ``before`` is the paging cursor."""
        if not all_storable(tenant, subject, action, outcome):
            return []  # no entry has it
        where, params = ["tenant = ?"], [tenant]
        for column, value in (("subject", subject), ("action", action), ("outcome", outcome)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            where.append("at >= ?")
            params.append(since)  # type: ignore[arg-type]
        if before is not None:
            where.append("audit_id < ?")
            params.append(before)
        sql = (
            f"SELECT {', '.join(AUDIT_COLUMNS)}, detail FROM audit WHERE {' AND '.join(where)}"
            " ORDER BY audit_id DESC LIMIT ?"
        )
        rows = self._transact(lambda: self.backend.execute(sql, (*params, limit)))
        return [_audit(row) for row in rows]


def _key(row: tuple[Any, ...]) -> ApiKey:
    return ApiKey(row[0], row[1], tuple(json.loads(row[2])), row[3], row[4], row[5], row[6])


def _audit(row: tuple[Any, ...]) -> dict[str, Any]:
    entry = dict(zip(AUDIT_COLUMNS, row, strict=False))
    entry["detail"] = json.loads(row[-1]) if row[-1] else None
    return entry
