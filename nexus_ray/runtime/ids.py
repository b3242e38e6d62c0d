"""Ids that sort by creation time (useful for listing runs newest first)."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from typing import Any


def new_run_id() -> str:
    """A 32-hex-digit id: 12 digits of milliseconds since the epoch, then 20 random. Ids
    sort by creation time to the millisecond (within one millisecond, at random)."""
    return time_prefix(time.time()) + secrets.token_hex(10)


def time_prefix(unix_s: float) -> str:
    """The first 12 digits of the ids drawn at ``unix_s``: every id drawn before that time
    sorts below it (how retention finds old runs and audit entries by primary key)."""
    return f"{int(unix_s * 1000):012x}"


IDEMPOTENCY_KEY_RULE = "1-255 printable ASCII characters (a UUID is a good choice)"


def valid_idempotency_key(key: object) -> bool:
    """Whether ``key`` can be an idempotency key (the same rule on every channel)."""
    return isinstance(key, str) and 0 < len(key) <= 255 and key.isprintable() and key.isascii()


def request_hash(workflow: str, node_inputs: dict[str, Any]) -> str:
    """A digest of what a request asks for (workflow and resolved inputs), key order aside."""
    canonical = json.dumps({"workflow": workflow, "inputs": node_inputs}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
