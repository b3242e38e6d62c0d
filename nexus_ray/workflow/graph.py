"""Workflow: an immutable, validated DAG of nodes."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ..checks import seconds
from ..errors import WorkflowError
from .fingerprint import node_fingerprints
from .graph_types import Connection
from .inputs import WorkflowInputs
from .node import Node
from .policy import DEFAULT_POLICY, NodePolicy
from .validation import check_connections, check_input_names, topological_order


class Workflow:
    """A validated, immutable workflow graph. Build one with :class:`WorkflowBuilder`.

    Attributes:
        nodes: Node id → node, in insertion order.
        connections: Every edge.
        order: A topological order of node ids.
        description: Free text shown in listings, OpenAPI and MCP.
        policies: Node id → retries/timeout policy (nodes not listed: no retries).
        resources: Node id → Ray resources; such nodes run as Ray tasks.
        timeout_s: Limit on a run's wall time (None: none).
        feeds_others: Ids of nodes whose outputs other nodes use.
    """

    def __init__(
        self,
        nodes: Mapping[str, Node],
        connections: Sequence[Connection],
        *,
        description: str = "",
        policies: Mapping[str, NodePolicy] | None = None,
        resources: Mapping[str, dict[str, Any]] | None = None,
        timeout_s: float | None = None,
    ) -> None:
        seconds(timeout_s, "A workflow's timeout_s", error=WorkflowError)
        check_connections(nodes, connections)
        self.order: tuple[str, ...] = tuple(topological_order(nodes, connections))
        self.nodes: Mapping[str, Node] = MappingProxyType(dict(nodes))
        self.connections: tuple[Connection, ...] = tuple(connections)
        self.description = description
        self.policies: Mapping[str, NodePolicy] = MappingProxyType(dict(policies or {}))
        self.resources: Mapping[str, dict[str, Any]] = MappingProxyType(dict(resources or {}))
        self.timeout_s = timeout_s
        self.incoming: Mapping[str, tuple[Connection, ...]] = _group(connections, "target", nodes)
        self.outgoing: Mapping[str, tuple[Connection, ...]] = _group(connections, "source", nodes)
        self.feeds_others: frozenset[str] = frozenset(n for n, edges in self.outgoing.items() if edges)
        connected = {(c.target, c.target_input) for c in connections}
        self.inputs = WorkflowInputs(self.nodes, connected)
        check_input_names(nodes, {n: [f.name for f in fs] for n, fs in self.inputs.open_fields.items()})

    @functools.cached_property
    def fingerprints(self) -> Mapping[str, str]:
        """Node id → digest of the node's definition (see fingerprint.py): a run records
        them when it starts, and a resumed run checks its completed nodes against them."""
        return MappingProxyType(node_fingerprints(self.nodes, self.incoming))

    def policy(self, node_id: str) -> NodePolicy:
        """The retries/timeout policy of a node."""
        return self.policies.get(node_id, DEFAULT_POLICY)

    def input_schema(self, title: str = "Inputs") -> dict[str, Any]:
        """JSON Schema of the ``inputs`` object a run accepts."""
        return self.inputs.json_schema(title)

    def output_schema(self, title: str = "Outputs") -> dict[str, Any]:
        """JSON Schema of a run's ``outputs``: node id → that node's output, where known."""
        properties = {}
        for node_id, node in self.nodes.items():
            schema = node.output_schema()
            properties[node_id] = schema if schema is not None else {"type": "object"}
        return {"type": "object", "title": title, "properties": properties}

    def resolve_inputs(self, raw: Any, workflow: str = "") -> dict[str, dict[str, Any]]:
        """Validate request inputs and route them to nodes (raises InputValidationError)."""
        return self.inputs.resolve(raw, workflow)

    def describe(self) -> dict[str, Any]:
        """The node graph as JSON: nodes and edges."""
        return {
            "nodes": [node.describe() for node in self.nodes.values()],
            "edges": [
                {"from": c.source, "output": c.source_output, "to": c.target, "input": c.target_input}
                for c in self.connections
            ],
        }

    def __repr__(self) -> str:
        return f"Workflow(nodes={list(self.nodes)}, connections={len(self.connections)})"

    def _repr_html_(self) -> str:
        """Jupyter: the graph as SVG."""
        from .render import workflow_svg

        return workflow_svg(self)


def _group(
    connections: Sequence[Connection], attr: str, nodes: Mapping[str, Node]
) -> Mapping[str, tuple[Connection, ...]]:
    grouped: dict[str, list[Connection]] = {node_id: [] for node_id in nodes}
    for conn in connections:
        grouped[getattr(conn, attr)].append(conn)
    return MappingProxyType({k: tuple(v) for k, v in grouped.items()})
