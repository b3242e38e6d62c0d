"""Structural checks of a workflow graph; each failure is a WorkflowError naming the parts."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

from ..errors import WorkflowError
from .graph_types import Connection
from .node import Node


def check_connections(nodes: Mapping[str, Node], connections: Sequence[Connection]) -> None:
    """Every edge joins existing nodes, a known output and a known input, once per input."""
    seen: dict[tuple[str, str], Connection] = {}
    for conn in connections:
        for end, node_id in (("from", conn.source), ("to", conn.target)):
            if node_id not in nodes:
                raise WorkflowError(
                    f"Connection {conn}: the {end} node {node_id!r} does not exist{_close(node_id, nodes)}.",
                    connection=str(conn),
                    node=node_id,
                )
        _check_ports(nodes, conn)
        key = (conn.target, conn.target_input)
        if key in seen:
            raise WorkflowError(
                f"Input {conn.target_input!r} of node {conn.target!r} is connected twice: "
                f"{seen[key]} and {conn}. Use a MergeNode to combine values.",
                node=conn.target,
                input=conn.target_input,
            )
        seen[key] = conn


def _check_ports(nodes: Mapping[str, Node], conn: Connection) -> None:
    source, target = nodes[conn.source], nodes[conn.target]
    ports = source.output_ports()
    if ports is not None and conn.source_path[0] not in ports:
        raise WorkflowError(
            f"Connection {conn}: node {conn.source!r} ({source.get_type_name()}) has no "
            f"output {conn.source_path[0]!r}; its outputs are {sorted(ports)}.",
            connection=str(conn),
            node=conn.source,
        )
    if not target.accepts_any_input and conn.target_input not in target.inputs:
        raise WorkflowError(
            f"Connection {conn}: node {conn.target!r} ({target.get_type_name()}) has no "
            f"input {conn.target_input!r}{_close(conn.target_input, target.inputs)}; its "
            f"inputs are {sorted(target.inputs)}.",
            connection=str(conn),
            node=conn.target,
            input=conn.target_input,
        )


def topological_order(nodes: Mapping[str, Node], connections: Sequence[Connection]) -> list[str]:
    """Node ids in an order where every edge points forward; WorkflowError on a cycle."""
    indegree = {node_id: 0 for node_id in nodes}
    successors: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for conn in connections:
        indegree[conn.target] += 1
        successors[conn.source].append(conn.target)
    ready = [n for n in nodes if indegree[n] == 0]
    order: list[str] = []
    while ready:
        current = ready.pop(0)
        order.append(current)
        for nxt in successors[current]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    if len(order) < len(nodes):
        cycle = find_cycle(successors, {n for n, d in indegree.items() if d > 0})
        raise WorkflowError(
            f"The workflow has a cycle: {' -> '.join(cycle)}. Workflows must be acyclic.",
            cycle=cycle,
        )
    return order


def find_cycle(successors: Mapping[str, list[str]], candidates: set[str]) -> list[str]:
    """One cycle among ``candidates``, as node ids with the first repeated at the end."""
    start = sorted(candidates)[0]
    path: list[str] = []
    index: dict[str, int] = {}
    current = start
    while current not in index:
        index[current] = len(path)
        path.append(current)
        current = next(n for n in successors[current] if n in candidates)
    return path[index[current] :] + [current]


def check_input_names(nodes: Mapping[str, Node], unconnected: Mapping[str, list[str]]) -> None:
    """An unconnected input must be addressable as a workflow input (not shadowed by a node id)."""
    for node_id, names in unconnected.items():
        for name in names:
            if name in nodes:
                raise WorkflowError(
                    f"Input {name!r} of node {node_id!r} is not connected, and it cannot be a "
                    f"workflow input because a node is also named {name!r}. Connect it, give "
                    "it a value in add_node, or rename the node.",
                    node=node_id,
                    input=name,
                )


def _close(name: str, options: Mapping[str, object]) -> str:
    close = difflib.get_close_matches(name, list(options), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
