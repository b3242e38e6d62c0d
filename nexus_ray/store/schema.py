"""The store's schema, versioned. Each migration moves a store one version up.

Types are chosen to mean the same in SQLite and PostgreSQL; JSON is stored as TEXT.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .checkpoint_carry_over import node_checkpoints_to_events

if TYPE_CHECKING:
    from .backends import Backend

SCHEMA_VERSION = 8

# MIGRATIONS[v] takes a store from version v to v + 1 (version 0: empty database): SQL
# statements, and steps that move data in Python (given the backend, in the same transaction).
MIGRATIONS: dict[int, list[str | Callable[[Backend], None]]] = {
    0: [
        """CREATE TABLE IF NOT EXISTS nexus_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
        """CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            workflow TEXT NOT NULL,
            status TEXT NOT NULL,
            inputs TEXT NOT NULL,
            outputs TEXT,
            error TEXT,
            owner TEXT,
            lease_expires DOUBLE PRECISION,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            finished_at DOUBLE PRECISION
        )""",
        """CREATE INDEX runs_by_status ON runs (status, lease_expires)""",
        """CREATE INDEX runs_by_workflow ON runs (workflow, run_id)""",
        """CREATE TABLE node_checkpoints (
            run_id TEXT NOT NULL,
            node_id TEXT NOT NULL,
            status TEXT NOT NULL,
            outputs TEXT,
            error TEXT,
            reason TEXT,
            started_at DOUBLE PRECISION,
            duration_ms DOUBLE PRECISION,
            PRIMARY KEY (run_id, node_id)
        )""",
    ],
    1: [
        """ALTER TABLE runs ADD COLUMN session_id TEXT""",
        """ALTER TABLE runs ADD COLUMN idempotency_key TEXT""",
        """CREATE INDEX runs_by_session ON runs (session_id, run_id)""",
        """CREATE TABLE idempotency_keys (
            key TEXT PRIMARY KEY,
            request_hash TEXT NOT NULL,
            run_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE sessions (
            session_id TEXT PRIMARY KEY,
            state TEXT NOT NULL,
            version BIGINT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION
        )""",
        """CREATE TABLE events (
            scope TEXT NOT NULL,
            scope_id TEXT NOT NULL,
            seq BIGINT NOT NULL,
            type TEXT NOT NULL,
            data TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (scope, scope_id, seq)
        )""",
    ],
    2: [
        """ALTER TABLE sessions ADD COLUMN ttl_s DOUBLE PRECISION""",
        """CREATE INDEX sessions_by_expiry ON sessions (expires_at)""",
    ],
    3: [
        # Never written: the key-to-run mapping lives in idempotency_keys.
        """ALTER TABLE runs DROP COLUMN idempotency_key""",
    ],
    4: [
        # Tenant tags (security/tenancy.py): derived from the id, '' for the default tenant.
        """ALTER TABLE runs ADD COLUMN tenant_tag TEXT NOT NULL DEFAULT ''""",
        """CREATE INDEX runs_by_tenant ON runs (tenant_tag, run_id)""",
        """CREATE INDEX runs_active_by_tenant ON runs (tenant_tag, status)""",
        """ALTER TABLE sessions ADD COLUMN tenant_tag TEXT NOT NULL DEFAULT ''""",
        """CREATE INDEX sessions_by_tenant ON sessions (tenant_tag, session_id)""",
        """CREATE TABLE api_keys (
            key_id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            roles TEXT NOT NULL,
            name TEXT NOT NULL,
            secret_hash TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            revoked_at DOUBLE PRECISION
        )""",
        """CREATE TABLE audit (
            audit_id TEXT PRIMARY KEY,
            at DOUBLE PRECISION NOT NULL,
            tenant TEXT NOT NULL,
            subject TEXT NOT NULL,
            channel TEXT NOT NULL,
            action TEXT NOT NULL,
            target TEXT,
            workflow TEXT,
            outcome TEXT NOT NULL,
            status INTEGER,
            detail TEXT
        )""",
        """CREATE INDEX audit_by_tenant ON audit (tenant, audit_id)""",
    ],
    5: [
        # Node states are read from the run's node.* events, written in the same transaction
        # as the table's rows since a release of schema 4; older runs' are carried over first.
        node_checkpoints_to_events,
        """DROP TABLE node_checkpoints""",
    ],
    6: [
        # Each index a run's row is in costs every commit a page write (WAL frame): a
        # durable run paid for six. Runs outside a session are not in the session index;
        # completed runs, nearly all of them, are not in the status index, whose other
        # entries (the active runs and the few failed or cancelled ones) serve a tenant's
        # listing by status, adoption and the per-tenant limit. A query that should use
        # it must say "status != 'completed'" itself (SQLite matches that term literally).
        """DROP INDEX runs_by_status""",
        """DROP INDEX runs_active_by_tenant""",
        """DROP INDEX runs_by_session""",
        """CREATE INDEX runs_by_session ON runs (session_id, run_id) WHERE session_id IS NOT NULL""",
        """CREATE INDEX runs_not_completed ON runs (status, tenant_tag, run_id) WHERE status != 'completed'""",
    ],
    7: [
        # Finished runs past the retention are deleted with their keys (purge_finished_runs).
        """CREATE INDEX idempotency_keys_by_run ON idempotency_keys (run_id)""",
    ],
}
