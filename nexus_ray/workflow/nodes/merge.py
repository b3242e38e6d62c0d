"""MergeNode: combine the inputs that arrived (a skipped branch simply does not arrive)."""

from __future__ import annotations

from typing import Any

from ...errors import WorkflowError
from ..node import Node, NodeContext, register_node_type

_MERGE_TYPES = ("first", "list", "dict", "merge_dict", "concat")


class MergeNode(Node):
    """Combine any number of connected inputs (connect to any input name).

    Runs when at least one input arrives (branches not taken after a Switch are left out)
    and is skipped only when all are. Inputs are taken in input-name order.

    Config ``merge_type``: ``first`` (default: the first arrived value, the usual join
    after a Switch), ``list`` (all values), ``dict`` (``{input_name: value}``),
    ``merge_dict`` (shallow merge of dict values), ``concat`` (concatenate lists).
    Output: ``{"merged_data": ...}``.
    """

    config_params = frozenset({"merge_type"})
    accepts_any_input = True
    skip_when = "all"

    def setup(self, merge_type: str = "first") -> None:
        if merge_type not in _MERGE_TYPES:
            raise WorkflowError(
                f"Node {self.node_id!r} (MergeNode): unknown merge_type {merge_type!r}; "
                f"use one of {list(_MERGE_TYPES)}.",
                node=self.node_id,
            )
        self._merge_type = merge_type

    def output_ports(self) -> frozenset[str]:
        return frozenset({"merged_data"})

    def output_schema(self) -> dict[str, Any]:
        return {"type": "object", "properties": {"merged_data": {}}, "required": ["merged_data"]}

    async def run(self, inputs: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        values = [inputs[name] for name in sorted(inputs)]
        kind = self._merge_type
        if kind == "first":
            return {"merged_data": values[0] if values else None}
        if kind == "list":
            return {"merged_data": values}
        if kind == "dict":
            return {"merged_data": {name: inputs[name] for name in sorted(inputs)}}
        if kind == "merge_dict":
            merged: dict[str, Any] = {}
            for value in values:
                if not isinstance(value, dict):
                    raise TypeError(f"merge_dict needs dict inputs, got {type(value).__name__}")
                merged.update(value)
            return {"merged_data": merged}
        combined: list[Any] = []
        for value in values:
            if not isinstance(value, list):
                raise TypeError(f"concat needs list inputs, got {type(value).__name__}")
            combined.extend(value)
        return {"merged_data": combined}


register_node_type(MergeNode)
