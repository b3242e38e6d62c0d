"""Options shared by the client commands, and the client they build."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from .cli_output import OutputFormat

if TYPE_CHECKING:
    from .cli_client import ServerClient

DEFAULT_URL = "http://127.0.0.1:8000"

Url = Annotated[str, typer.Option("--url", envvar="NEXUS_URL", help="The running server.")]
Token = Annotated[
    str | None, typer.Option("--token", envvar="NEXUS_TOKEN", help="Bearer token or API key.", show_default=False)
]
Output = Annotated[OutputFormat, typer.Option("--output", "-o", help="json, table or yaml.")]


@contextmanager
def server(url: str, token: str | None) -> Iterator[ServerClient]:
    """A client of the server at ``url`` for one command (httpx loads only here)."""
    from .cli_client import ServerClient

    client = ServerClient(url, token)
    try:
        yield client
    finally:
        client.close()
