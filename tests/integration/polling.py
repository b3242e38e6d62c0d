"""Waiting on runs over REST."""

from __future__ import annotations

import time
from typing import Any

import httpx


def wait_for(http: httpx.Client, run_id: str, done: Any, timeout: float = 60) -> dict[str, Any]:
    """The run's body once ``done(body)`` holds; AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = http.get(f"/runs/{run_id}").json()
        if done(body):
            return body
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting on run {run_id}: {body}")
