"""How the CLI prints: json (always valid JSON), yaml or a table; live run progress.

On a terminal, tables and progress use Rich; otherwise the output is plain and stable (no
colour, no spinner), so scripts can rely on it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table


class OutputFormat(StrEnum):
    """``--output``."""

    json = "json"
    table = "table"
    yaml = "yaml"


def console(stderr: bool = False) -> Console:
    """Rich console; plain (no colour, wide, no markup guessing) when not a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty()
    return Console(
        file=stream, no_color=not tty, highlight=False, width=None if tty else 200, force_terminal=tty or None
    )


def print_data(data: Any, fmt: OutputFormat, table: Callable[[Any], Table] | None = None) -> None:
    """``data`` as JSON, YAML, or the table ``table(data)`` builds (JSON when none)."""
    if fmt == OutputFormat.yaml:
        import yaml

        sys.stdout.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    elif fmt == OutputFormat.table and table is not None:
        console().print(table(data))
    else:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def rows_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """A simple table."""
    out = Table(title=title, title_justify="left")
    for column in columns:
        out.add_column(column)
    for row in rows:
        out.add_row(*("" if value is None else str(value) for value in row))
    return out


class RunProgress:
    """Shows a run's events as they arrive: a live node table on a terminal, plain lines
    (on stderr, so stdout keeps only the result) otherwise."""

    def __init__(self) -> None:
        self.err = console(stderr=True)
        self.live = self.err.is_terminal
        self.nodes: dict[str, dict[str, str]] = {}
        self._live: Live | None = None

    def __enter__(self) -> RunProgress:
        if self.live:
            self._live = Live(self._table(), console=self.err, transient=False, refresh_per_second=10)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(None, None, None)

    def update(self, event: dict[str, Any]) -> None:
        """Take one event."""
        kind, data = event["type"], event.get("data", {})
        node = data.get("node")
        if kind.startswith("node.") and node:
            self.nodes.setdefault(node, {"status": "", "detail": ""})
            self.nodes[node].update(_node_state(kind, data))
        if self._live is not None:
            self._live.update(self._table())
        else:
            self.err.print(_plain_line(event), markup=False, highlight=False)

    def _table(self) -> Table:
        return rows_table(
            "", ["node", "status", "detail"], [(n, s["status"], s["detail"]) for n, s in self.nodes.items()]
        )


def _node_state(kind: str, data: dict[str, Any]) -> dict[str, str]:
    if kind == "node.progress":
        fraction = data.get("fraction")
        percent = f"{fraction:.0%} " if isinstance(fraction, int | float) else ""
        return {"detail": f"{percent}{data.get('message') or ''}".strip()}
    if kind == "node.completed":
        return {"status": "completed", "detail": f"{data.get('duration_ms') or 0:.1f} ms"}
    if kind == "node.failed":
        error = data.get("error") or {}
        return {"status": "failed", "detail": f"{error.get('type')}: {error.get('message')}"}
    if kind == "node.retrying":
        return {"status": "retrying", "detail": f"attempt {data.get('attempt')} failed"}
    if kind == "node.waiting":
        return {"status": "waiting", "detail": f"for {data.get('resources')} (up to {data.get('wait_s'):g} s)"}
    return {"status": kind.removeprefix("node."), "detail": str(data.get("reason") or "")}


def _plain_line(event: dict[str, Any]) -> str:
    kind, data = event["type"], event.get("data", {})
    node = data.get("node")
    if kind.startswith("node.") and node:
        detail = _node_state(kind, data).get("detail", "")
        return f"{kind} {node}" + (f" ({detail})" if detail else "")
    if kind.startswith("run."):
        return f"{kind} {event.get('run_id', '')}".rstrip()
    return f"{kind} {json.dumps(data, default=str)}"
