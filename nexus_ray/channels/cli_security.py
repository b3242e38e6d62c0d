"""``nexus keys ...`` (API keys, straight on the store: works before any server runs) and
``nexus audit`` (the audit trail, from a running server)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .cli_options import DEFAULT_URL, Output, Token, Url, server
from .cli_output import OutputFormat, print_data, rows_table

if TYPE_CHECKING:
    from ..store import Store

keys = typer.Typer(help="API keys: create, list, revoke (on the store of NEXUS_HOME / NEXUS_STORE_URL).")

Home = Annotated[
    Path | None,
    typer.Option("--home", envvar="NEXUS_HOME", help="The app's NEXUS_HOME (SQLite store).", show_default=False),
]
StoreUrl = Annotated[
    str | None,
    typer.Option("--store-url", envvar="NEXUS_STORE_URL", help="postgresql://... store.", show_default=False),
]
KEY_COLUMNS = ("key_id", "tenant", "roles", "name", "created_at", "revoked_at")


@contextmanager
def _store(home: Path | None, store_url: str | None) -> Iterator[Store]:
    from ..security.admin import admin_store
    from ..settings import load_settings

    options: dict[str, Any] = {"store_url": store_url}
    if home is not None:
        options["home"] = home
    with admin_store(load_settings(**options)) as store:
        yield store


def _keys_table(rows: list[dict[str, Any]]) -> Any:
    def when(value: float | None) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value)) if value else ""

    cells = [
        [r["key_id"], r["tenant"], ",".join(r["roles"]), r["name"], when(r["created_at"]), when(r["revoked_at"])]
        for r in rows
    ]
    return rows_table("API keys", KEY_COLUMNS, cells)


@keys.command("create")
def create_key(
    tenant: Annotated[str, typer.Option(help="The tenant the key acts in.")],
    role: Annotated[list[str], typer.Option("--role", help="A role (repeat for several), e.g. admin, viewer.")],
    name: Annotated[str, typer.Option(help="A label, e.g. who holds it.")] = "",
    home: Home = None,
    store_url: StoreUrl = None,
    output: Output = OutputFormat.json,
) -> None:
    """Create a key. The key is printed once: store it now (only its hash is kept)."""
    from ..security.admin import create_api_key

    with _store(home, store_url) as store:
        created = create_api_key(store, tenant, role, name)
    typer.echo("Store this key now; it cannot be shown again.", err=True)
    print_data(created, output, lambda c: rows_table("API key", ["key_id", "api_key"], [[c["key_id"], c["api_key"]]]))


@keys.command("list")
def list_keys(home: Home = None, store_url: StoreUrl = None, output: Output = OutputFormat.table) -> None:
    """Every key (ids, tenants, roles; never the keys)."""
    from ..security.admin import list_api_keys

    with _store(home, store_url) as store:
        print_data(list_api_keys(store), output, _keys_table)


@keys.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="The key's id (nexus keys list).")],
    home: Home = None,
    store_url: StoreUrl = None,
    output: Output = OutputFormat.json,
) -> None:
    """Revoke a key for good; running servers refuse it within a second."""
    from ..security.admin import revoke_api_key

    with _store(home, store_url) as store:
        print_data(revoke_api_key(store, key_id), output, lambda r: _keys_table([r]))


def audit(
    subject: Annotated[str | None, typer.Option(help="Only this principal's actions.")] = None,
    action: Annotated[str | None, typer.Option(help="Only this action (e.g. execute, cancel_run).")] = None,
    outcome: Annotated[
        str | None, typer.Option(help="ok, denied, unauthenticated, rate_limited, not_found, rejected, error.")
    ] = None,
    since: Annotated[float | None, typer.Option(help="Only the last SINCE seconds.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    url: Url = DEFAULT_URL,
    token: Token = None,
    output: Output = OutputFormat.table,
) -> None:
    """The audit trail of your tenant, newest first (admin)."""
    params: dict[str, Any] = {"subject": subject, "action": action, "outcome": outcome, "limit": limit}
    if since is not None:
        params["since"] = time.time() - since
    with server(url, token) as client:
        page = client.request("GET", "/audit", params={k: v for k, v in params.items() if v is not None})
    columns = ("at", "subject", "channel", "action", "workflow", "target", "outcome", "status")

    def table(entries: list[dict[str, Any]]) -> Any:
        rows = [[time.strftime("%H:%M:%S", time.localtime(e["at"])), *(e[c] for c in columns[1:])] for e in entries]
        return rows_table("Audit", columns, rows)

    print_data(page["entries"], output, table)
