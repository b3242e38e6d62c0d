"""WorkflowBuilder: the Kailash-shaped way to assemble a workflow."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..errors import WorkflowError
from .graph import Workflow
from .graph_types import Connection
from .node import Node, lookup_node_type
from .paths import split_path
from .policy import NodePolicy, check_resources
from .typed import node_class_of


class WorkflowBuilder:
    """Collect nodes and connections, then :meth:`build` an immutable :class:`Workflow`.

    Example:
        >>> b = WorkflowBuilder()
        >>> b.add_node("PythonCodeNode", "double", {"code": "result = {'value': x * 2}"})
        >>> b.add_node("PythonCodeNode", "add_one", {"code": "result = {'value': v + 1}"})
        >>> b.add_connection("double", "result.value", "add_one", "v")
        >>> workflow = b.build()
    """

    def __init__(self, description: str = "", *, timeout_s: float | None = None) -> None:
        self.description = description
        self.timeout_s = timeout_s
        self._nodes: dict[str, Node] = {}
        self._policies: dict[str, NodePolicy] = {}
        self._resources: dict[str, dict[str, Any]] = {}
        self._connections: list[Connection] = []

    def add_node(
        self,
        node_type: str | type[Node] | Callable[..., Any],
        node_id: str,
        params: Mapping[str, Any] | None = None,
        *,
        policy: NodePolicy | None = None,
        resources: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> WorkflowBuilder:
        """Add a node.

        Args:
            node_type: A registered type name (``"PythonCodeNode"``), a Node class, or a
                typed function (``@node``-decorated or plain).
            node_id: Unique id within the workflow.
            params: Configuration and input values (Kailash style, a dict).
            policy: Retries, backoff and timeout of this node (default: none).
            resources: Ray resources, e.g. ``{"num_cpus": 1}``, ``{"num_gpus": 1}``,
                ``{"resources": {"my_label": 1}}``, ``{"memory": 2**30}``: the node then
                runs as a Ray task wherever the cluster has them (others run in the host).
            **kwargs: Same as ``params``, as keywords.

        Raises:
            WorkflowError: unknown type (with close matches), duplicate id, bad parameters.
        """
        if not isinstance(node_id, str) or not node_id:
            raise WorkflowError(f"Node id must be a non-empty string, got {node_id!r}.")
        if node_id in self._nodes:
            raise WorkflowError(f"Duplicate node id {node_id!r}: each node needs its own id.", node=node_id)
        cls = self._node_class(node_type, node_id)
        self._nodes[node_id] = cls(node_id, **{**(params or {}), **kwargs})
        if policy is not None:
            if not isinstance(policy, NodePolicy):
                raise WorkflowError(f"Node {node_id!r}: policy must be a NodePolicy, got {policy!r}.", node=node_id)
            self._policies[node_id] = policy
        if resources is not None:
            self._resources[node_id] = check_resources(node_id, resources)
        return self

    @staticmethod
    def _node_class(node_type: Any, node_id: str) -> type[Node]:
        if isinstance(node_type, str):
            return lookup_node_type(node_type)
        cls = node_class_of(node_type)
        if cls is None:
            raise WorkflowError(
                f"Node {node_id!r}: {node_type!r} is not a node type name, Node class or function.",
                node=node_id,
            )
        return cls

    def add_connection(self, from_node: str, from_output: str, to_node: str, to_input: str) -> WorkflowBuilder:
        """Feed ``from_node``'s output (a dotted path such as ``"result.value"``) to ``to_input``."""
        if not from_output or not to_input:
            raise WorkflowError(
                f"Connection {from_node}.{from_output!r} -> {to_node}.{to_input!r} needs an output and an input name.",
            )
        self._connections.append(Connection(from_node, split_path(from_output), to_node, to_input))
        return self

    def connect(self, from_node: str, to_node: str, mapping: Mapping[str, str] | None = None) -> WorkflowBuilder:
        """Connect with a ``{output_path: input_name}`` mapping (default ``{"result": "input"}``)."""
        for output, input_name in (mapping or {"result": "input"}).items():
            self.add_connection(from_node, output, to_node, input_name)
        return self

    def build(self, description: str | None = None) -> Workflow:
        """Validate and freeze; raises WorkflowError naming the offending nodes or edge."""
        if not self._nodes:
            raise WorkflowError("A workflow needs at least one node; call add_node first.")
        text = self.description if description is None else description
        return Workflow(
            self._nodes,
            self._connections,
            description=text,
            policies=self._policies,
            resources=self._resources,
            timeout_s=self.timeout_s,
        )
