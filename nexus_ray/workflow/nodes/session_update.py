"""SessionUpdateNode: how a workflow writes back to the session it runs in."""

from __future__ import annotations

from typing import Any

from ..fields import InputField
from ..node import Node, NodeContext, register_node_type


class SessionUpdateNode(Node):
    """Emit a JSON merge patch (RFC 7396) for the run's session.

    When a run that belongs to a session completes, the patches of its completed
    SessionUpdateNodes (in workflow order) are applied to the session in the same store
    transaction that records the run's completion: both happen, or neither. A failed or
    cancelled run changes nothing; a run without a session ignores them.

    Input: ``patch`` (an object). Output: ``{"patch": patch}``.
    """

    def declare_inputs(self) -> dict[str, InputField]:
        return {"patch": InputField("patch", dict[str, Any], description="JSON merge patch for the session state")}

    def output_ports(self) -> frozenset[str]:
        return frozenset({"patch"})

    def output_schema(self) -> dict[str, Any]:
        return {"type": "object", "properties": {"patch": {"type": "object"}}, "required": ["patch"]}

    async def run(self, inputs: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        return {"patch": inputs["patch"]}


def session_patches(nodes: dict[str, Node], order: tuple[str, ...], outputs: dict[str, dict[str, Any]]) -> list[Any]:
    """The patches of the completed SessionUpdateNodes, in workflow order."""
    return [outputs[n]["patch"] for n in order if isinstance(nodes[n], SessionUpdateNode) and n in outputs]


register_node_type(SessionUpdateNode)
