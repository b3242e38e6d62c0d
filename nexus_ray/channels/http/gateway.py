"""What the HTTP channel needs from the runtime (the RunHost pool, one actor hop away)."""

from __future__ import annotations

from typing import Any, Protocol


class RunGateway(Protocol):
    """Runs, addressed by id; each call goes to the RunHost that owns the id."""

    async def execute(self, name: str, node_inputs: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any]:
        """Execute and return the RunResult dict."""
        ...

    async def execute_idempotent(
        self, key: str, name: str, node_inputs: dict[str, dict[str, Any]], wait: bool, tenant: str = ...
    ) -> dict[str, Any]:
        """Execute (``wait``) or start under an idempotency key of ``tenant`` (409 on a
        different request)."""
        ...

    async def execute_in_session(
        self,
        name: str,
        inputs: dict[str, Any],
        session_id: str,
        wait: bool,
        idempotency_key: str | None = None,
        tenant: str = ...,
    ) -> dict[str, Any]:
        """Execute (``wait``) or start in a session; inputs are resolved with its state.
        Under an idempotency key, the same inputs and session give the same run."""
        ...

    async def start(self, name: str, node_inputs: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any]:
        """Start without waiting: ``{"run_id", "status"}``."""
        ...

    async def wait_events(self, run_id: str, after: int, timeout_s: float) -> tuple[list[dict[str, Any]], bool]:
        """Events after ``after`` (a long poll) and whether the run ended."""
        ...

    async def health(self) -> list[dict[str, Any]]:
        """Each RunHost's health."""
        ...

    async def metrics_text(self) -> list[str]:
        """Each RunHost's metrics (Prometheus text)."""
        ...

    async def get_run(self, run_id: str) -> dict[str, Any]:
        """A run's current state."""
        ...

    async def cancel(self, run_id: str) -> dict[str, Any]:
        """Cancel; the final state."""
        ...

    async def list_runs(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        """Run summaries, newest first."""
        ...
