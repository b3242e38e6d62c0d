"""The runtime as one principal may use it: every channel (REST, WebSocket, SSE, MCP)
reaches runs and sessions only through these, so permissions and tenant isolation are
checked in one place. An id of another tenant is answered exactly like an unknown id."""

from __future__ import annotations

from typing import Any

from ..registry import RegisteredWorkflow
from ..runtime.ids import new_run_id
from ..security.guard import Guard
from ..security.principal import Principal
from ..security.tenancy import require_run, require_session, scoped, tenant_tag
from .http.gateway import RunGateway
from .http.sessions import SessionGateway


class PrincipalRuns:
    """Runs, as ``principal`` may see and change them."""

    def __init__(self, runner: RunGateway, guard: Guard, principal: Principal) -> None:
        self.runner, self.guard, self.principal = runner, guard, principal
        self.tenant = principal.tenant

    def new_run_id(self) -> str:
        """A new run id of the principal's tenant."""
        return scoped(new_run_id(), self.tenant)

    def may_execute(self, item: RegisteredWorkflow) -> None:
        """403 unless the principal may execute ``item``."""
        self.guard.require(self.principal, "execute", item.name)

    async def execute(self, name: str, node_inputs: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any]:
        """Execute (the caller checked ``may_execute``); ``run_id`` from :meth:`new_run_id`."""
        require_run(self.tenant, run_id)
        return await self.runner.execute(name, node_inputs, run_id)

    async def start(self, name: str, node_inputs: dict[str, dict[str, Any]], run_id: str) -> dict[str, Any]:
        """Start without waiting (the caller checked ``may_execute``)."""
        require_run(self.tenant, run_id)
        return await self.runner.start(name, node_inputs, run_id)

    async def execute_idempotent(
        self, key: str, name: str, node_inputs: dict[str, dict[str, Any]], wait: bool
    ) -> dict[str, Any]:
        """Execute under an idempotency key of the principal's tenant."""
        return await self.runner.execute_idempotent(key, name, node_inputs, wait, self.tenant)

    async def execute_in_session(
        self, name: str, inputs: dict[str, Any], session_id: str, wait: bool, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Execute in one of the tenant's sessions."""
        require_session(self.tenant, session_id)
        return await self.runner.execute_in_session(name, inputs, session_id, wait, idempotency_key, self.tenant)

    async def get_run(self, run_id: str) -> dict[str, Any]:
        """A run of the tenant's, when the principal may read its workflow."""
        require_run(self.tenant, run_id)
        run = await self.runner.get_run(run_id)
        self.guard.require(self.principal, "read", run.get("workflow"))
        return run

    async def cancel(self, run_id: str) -> dict[str, Any]:
        """Cancel a run of the tenant's, when the principal may cancel its workflow."""
        await self._may(run_id, "cancel")
        return await self.runner.cancel(run_id)

    async def readable(self, run_id: str) -> str:
        """Check that the principal may read the run's events; its id."""
        await self._may(run_id, "read")
        return run_id

    async def _may(self, run_id: str, action: str) -> None:
        """403/404 unless the principal may do ``action`` on this run. Only a grant for
        some workflows needs the run's workflow, so only then is the run looked up."""
        require_run(self.tenant, run_id)
        if not self.guard.rbac.allowed_everywhere(self.principal, action):
            run = await self.runner.get_run(run_id)
            self.guard.require(self.principal, action, run.get("workflow"))

    async def list_runs(self, filters: dict[str, Any]) -> dict[str, Any]:
        """A page ``{"runs", "next_cursor"}`` of the tenant's runs whose workflow the
        principal may read (the cursor follows the stored page, so paging goes on past
        runs it may not see)."""
        if filters.get("workflow") is not None:
            self.guard.require(self.principal, "read", filters["workflow"])
        else:
            self.guard.require(self.principal, "read")
        page = await self.runner.list_runs({**filters, "tenant_tag": tenant_tag(self.tenant)})
        next_cursor = page[-1]["run_id"] if len(page) == filters["limit"] else None
        runs = [r for r in page if self.guard.allowed(self.principal, "read", r.get("workflow"))]
        return {"runs": runs, "next_cursor": next_cursor}


class PrincipalSessions:
    """Sessions, as ``principal`` may see and change them."""

    def __init__(self, sessions: SessionGateway, guard: Guard, principal: Principal) -> None:
        self.sessions, self.guard, self.principal = sessions, guard, principal
        self.tenant = principal.tenant

    def _may(self, action: str) -> None:
        if action == "read" and self.guard.allowed(self.principal, "manage_sessions"):
            return
        self.guard.require(self.principal, action)

    async def create(
        self, state: dict[str, Any] | None, ttl_s: float | None, dedicated: bool | None = None
    ) -> dict[str, Any]:
        """A new session of the tenant."""
        self._may("manage_sessions")
        self.guard.check_depth(state or {}, "state")
        return await self.sessions.create(state, ttl_s, dedicated, self.tenant)

    async def get(self, session_id: str) -> dict[str, Any]:
        """One of the tenant's sessions."""
        self._may("read")
        require_session(self.tenant, session_id)
        return await self.sessions.get(session_id)

    async def patch(self, session_id: str, patch: dict[str, Any], if_version: int | None) -> dict[str, Any]:
        """Change one of the tenant's sessions."""
        self._may("manage_sessions")
        require_session(self.tenant, session_id)
        self.guard.check_depth(patch, "patch")
        return await self.sessions.patch(session_id, patch, if_version)

    async def delete(self, session_id: str) -> None:
        """Delete one of the tenant's sessions."""
        self._may("manage_sessions")
        require_session(self.tenant, session_id)
        await self.sessions.delete(session_id)

    def readable(self, session_id: str) -> str:
        """Check that the principal may read the session's events; its id."""
        self._may("read")
        require_session(self.tenant, session_id)
        return session_id

    async def list(self, limit: int, before: str | None) -> list[dict[str, Any]]:
        """The tenant's live sessions."""
        self._may("read")
        return await self.sessions.list(limit, before, tenant_tag(self.tenant))


class Access:
    """Makes the principal-bound gateways of a request (or an MCP call)."""

    def __init__(self, runner: RunGateway, sessions: SessionGateway, guard: Guard) -> None:
        self.runner, self.sessions_gateway, self.guard = runner, sessions, guard

    def runs(self, principal: Principal) -> PrincipalRuns:
        """Runs as ``principal`` may use them."""
        return PrincipalRuns(self.runner, self.guard, principal)

    def sessions(self, principal: Principal) -> PrincipalSessions:
        """Sessions as ``principal`` may use them."""
        return PrincipalSessions(self.sessions_gateway, self.guard, principal)
