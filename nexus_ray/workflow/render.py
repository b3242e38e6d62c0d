"""Rich views for Jupyter: a workflow's graph as SVG, a run's result as an HTML table.
Plain strings, no dependencies (``Workflow._repr_html_`` and ``RunResult._repr_html_``)."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .graph import Workflow
    from .result import RunResult

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 170, 46, 70, 24, 12
STATUS_COLOURS = {"completed": "#2e7d32", "failed": "#c62828", "skipped": "#757575", "cancelled": "#ef6c00"}


def columns(order: Sequence[str], edges: Sequence[tuple[str, str]]) -> dict[str, int]:
    """Each node's column: the length of the longest path reaching it."""
    column = dict.fromkeys(order, 0)
    for node in order:  # topological: a node's sources are placed before it
        for source, target in edges:
            if target == node:
                column[node] = max(column[node], column[source] + 1)
    return column


def workflow_svg(workflow: Workflow) -> str:
    """The graph left to right: a box per node (id and type), an arrow per connection
    labelled ``output → input``."""
    edges = [(c.source, c.target) for c in workflow.connections]
    column = columns(workflow.order, edges)
    rows: dict[int, int] = {}
    place: dict[str, tuple[int, int]] = {}
    for node in workflow.order:
        row = rows.get(column[node], 0)
        rows[column[node]] = row + 1
        place[node] = (PAD + column[node] * (BOX_W + GAP_X), PAD + row * (BOX_H + GAP_Y))
    width = PAD * 2 + (max(column.values(), default=0) + 1) * (BOX_W + GAP_X) - GAP_X
    height = PAD * 2 + max(rows.values(), default=1) * (BOX_H + GAP_Y) - GAP_Y
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="12"><defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="8" refY="4" '
        'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>'
    ]
    for c in workflow.connections:
        (x1, y1), (x2, y2) = place[c.source], place[c.target]
        a = (x1 + BOX_W, y1 + BOX_H // 2)
        b = (x2, y2 + BOX_H // 2)
        label = html.escape(f"{c.source_output} → {c.target_input}")
        parts.append(
            f'<line x1="{a[0]}" y1="{a[1]}" x2="{b[0]}" y2="{b[1]}" stroke="#555" marker-end="url(#arrow)"/>'
            f'<text x="{(a[0] + b[0]) // 2}" y="{(a[1] + b[1]) // 2 - 4}" text-anchor="middle" '
            f'fill="#555" font-size="10">{label}</text>'
        )
    for node_id, (x, y) in place.items():
        kind = html.escape(workflow.nodes[node_id].get_type_name())
        parts.append(
            f'<g><rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6" fill="#eef3fb" stroke="#3b6db3"/>'
            f'<text x="{x + BOX_W // 2}" y="{y + 19}" text-anchor="middle" font-weight="bold">'
            f"{html.escape(node_id)}</text>"
            f'<text x="{x + BOX_W // 2}" y="{y + 35}" text-anchor="middle" fill="#555">{kind}</text></g>'
        )
    return "".join(parts) + "</svg>"


def run_table_html(result: RunResult) -> str:
    """A run as a table: one row per node with its status, duration and outputs (or error)."""
    status = str(getattr(result.status, "value", result.status))
    head = (
        f"<p><b>{html.escape(result.workflow)}</b> run <code>{html.escape(result.run_id)}</code>: "
        f'<span style="color:{STATUS_COLOURS.get(status, "#000")}">{html.escape(status)}</span> '
        f"in {result.duration_ms:.1f} ms</p>"
    )
    rows = []
    for node_id, record in result.nodes.items():
        node_status = str(getattr(record.status, "value", record.status))
        shown = record.error if record.error else result.outputs.get(node_id, record.reason or "")
        duration = f"{record.duration_ms:.1f}" if record.duration_ms is not None else ""
        rows.append(
            f"<tr><td>{html.escape(node_id)}</td>"
            f'<td style="color:{STATUS_COLOURS.get(node_status, "#000")}">{html.escape(node_status)}</td>'
            f"<td>{duration}</td><td><code>{html.escape(_short(shown))}</code></td></tr>"
        )
    table = "<tr><th>node</th><th>status</th><th>ms</th><th>outputs</th></tr>" + "".join(rows)
    return f"{head}<table>{table}</table>"


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
