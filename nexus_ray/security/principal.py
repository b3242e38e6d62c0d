"""Who is calling: the principal every channel resolves from a credential."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    Attributes:
        subject: Who (a JWT's ``sub``, or ``key:<id>`` for an API key).
        tenant: Whose data it may see; runs, sessions and events belong to one tenant.
        roles: Role names (see rbac.py).
        via: How it authenticated: ``jwt``, ``api_key``, or ``anonymous`` (auth off).
    """

    subject: str
    tenant: str
    roles: tuple[str, ...]
    via: str

    def to_dict(self) -> dict[str, object]:
        """As JSON (never the credential)."""
        return {"subject": self.subject, "tenant": self.tenant, "roles": list(self.roles), "via": self.via}


# With auth off (local development) every caller is this principal.
ANONYMOUS = Principal("anonymous", DEFAULT_TENANT, ("admin",), "anonymous")
