"""The store's schema, versioned. Each migration moves a store one version up.

Types are chosen to mean the same in SQLite and PostgreSQL; JSON is stored as TEXT.
"""

from __future__ import annotations

SCHEMA_VERSION = 4

# MIGRATIONS[v] takes a store from version v to v + 1 (version 0: empty database).
MIGRATIONS: dict[int, list[str]] = {
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
}
