"""Role-based access control. A role grants actions per workflow name pattern (fnmatch):

    roles:
      operator: {"*": [execute, read, cancel, manage_sessions]}
      reporter: {"report_*": [execute, read]}

Actions: ``execute`` (run a workflow), ``read`` (runs and their events, sessions),
``cancel``, ``manage_sessions`` (create, change, delete sessions and their events), and
``admin`` (everything, plus the audit trail and metrics). Built in: ``admin`` (everything)
and ``viewer`` (read only). Session actions are not tied to a workflow: a role has them
when any of its patterns grants them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigurationError, PermissionDeniedError
from .principal import Principal

ACTIONS = ("execute", "read", "cancel", "manage_sessions", "admin")
Grants = dict[str, frozenset[str]]
BUILTIN: dict[str, Grants] = {
    "admin": {"*": frozenset(ACTIONS)},
    "viewer": {"*": frozenset({"read"})},
}


class Rbac:
    """The roles of an app and the checks against them.

    Args:
        roles: role → {workflow pattern → actions}, added to (or replacing) the built-ins.
    """

    def __init__(self, roles: Mapping[str, Mapping[str, list[str]]] | None = None) -> None:
        self.roles: dict[str, Grants] = dict(BUILTIN)
        for name, grants in (roles or {}).items():
            self.roles[name] = _parse_role(name, grants)

    def allowed(self, principal: Principal, action: str, workflow: str | None = None) -> bool:
        """Whether ``principal`` may do ``action`` (on ``workflow``; None: on any)."""
        for role in principal.roles:
            for pattern, actions in self.roles.get(role, {}).items():
                if action not in actions and "admin" not in actions:
                    continue
                if workflow is None or fnmatch.fnmatchcase(workflow, pattern):
                    return True
        return False

    def allowed_everywhere(self, principal: Principal, action: str) -> bool:
        """Whether ``principal`` may do ``action`` on every workflow (a ``*`` grant): then
        no run needs to be looked up to learn its workflow first."""
        for role in principal.roles:
            actions = self.roles.get(role, {}).get("*", frozenset())
            if action in actions or "admin" in actions:
                return True
        return False

    def require(self, principal: Principal, action: str, workflow: str | None = None) -> None:
        """403 naming the missing permission unless allowed."""
        if self.allowed(principal, action, workflow):
            return
        where = f" on workflow {workflow!r}" if workflow is not None else ""
        roles = ", ".join(principal.roles) or "none"
        raise PermissionDeniedError(
            f"Permission {action!r}{where} is missing (roles: {roles}).",
            permission=action,
            workflow=workflow,
        )


def load_roles(path: Path) -> dict[str, dict[str, list[str]]]:
    """Roles from a YAML file: ``roles: {name: {pattern: [actions]}}`` (or the mapping alone)."""
    try:
        data: Any = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigurationError(f"NEXUS_ROLES_FILE: cannot read {str(path)!r}: {exc.strerror}.") from None
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"NEXUS_ROLES_FILE {str(path)!r} is not valid YAML: {exc}") from None
    roles = data.get("roles", data) if isinstance(data, dict) else data
    if not isinstance(roles, dict):
        raise ConfigurationError(f"NEXUS_ROLES_FILE {str(path)!r}: expected 'roles: {{name: {{pattern: [actions]}}}}'.")
    for name, grants in roles.items():
        _parse_role(str(name), grants)
    return {str(k): v for k, v in roles.items()}


def _parse_role(name: str, grants: Any) -> Grants:
    if not isinstance(grants, Mapping):
        raise ConfigurationError(f"Role {name!r}: expected {{workflow pattern: [actions]}}, got {grants!r}.")
    parsed: Grants = {}
    for pattern, actions in grants.items():
        if not isinstance(actions, list | tuple) or not all(isinstance(a, str) for a in actions):
            raise ConfigurationError(f"Role {name!r}, pattern {pattern!r}: actions must be a list of names.")
        unknown = sorted(set(actions) - set(ACTIONS))
        if unknown:
            raise ConfigurationError(f"Role {name!r}: unknown actions {unknown}; known: {list(ACTIONS)}.")
        parsed[str(pattern)] = frozenset(actions)
    return parsed
