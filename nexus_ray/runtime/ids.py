"""Ids that sort by creation time (useful for listing runs newest first)."""

from __future__ import annotations

import secrets
import time


def new_run_id() -> str:
    """A 32-hex-digit id: 12 digits of milliseconds since the epoch, then 20 random."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"
