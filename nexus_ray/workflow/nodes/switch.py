"""SwitchNode: route a value to one of several outputs; the others' downstream is skipped."""

from __future__ import annotations

import operator
from typing import Any

from ...errors import WorkflowError
from ..fields import InputField
from ..node import Node, NodeContext, register_node_type
from ..paths import PathError, get_path, split_path

_OPERATORS: dict[str, Any] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "in": lambda a, b: a in b,
    "not in": lambda a, b: a not in b,
    "contains": lambda a, b: b in a,
    "is_null": lambda a, _b: a is None,
    "is_not_null": lambda a, _b: a is not None,
}


class SwitchNode(Node):
    """Route ``input_data`` to one output; downstream of every other output is skipped.

    Config (boolean mode): ``condition_field`` (dotted path into input_data; omit to test
    input_data itself), ``operator`` (one of ``==, !=, >, >=, <, <=, in, not in, contains,
    is_null, is_not_null``; default ``==``), ``value``. Outputs ``true_output`` or
    ``false_output``.

    Config (multi-case mode): ``cases`` (a list of values compared with ``==`` against the
    condition field) → output ``case_<value>``, else ``default``.
    """

    config_params = frozenset({"condition_field", "operator", "value", "cases"})

    def setup(
        self,
        condition_field: str | None = None,
        operator: str = "==",
        value: Any = None,
        cases: list[Any] | None = None,
    ) -> None:
        if operator not in _OPERATORS:
            raise WorkflowError(
                f"Node {self.node_id!r} (SwitchNode): unknown operator {operator!r}; use one of {list(_OPERATORS)}.",
                node=self.node_id,
            )
        if cases is not None and (not isinstance(cases, list) or not cases):
            raise WorkflowError(
                f"Node {self.node_id!r} (SwitchNode): 'cases' must be a non-empty list.",
                node=self.node_id,
            )
        self._path = split_path(condition_field) if condition_field else ()
        self._operator = operator
        self._value = value
        self._cases = cases

    def declare_inputs(self) -> dict[str, InputField]:
        return {"input_data": InputField("input_data", Any, description="Value to route")}

    def output_ports(self) -> frozenset[str]:
        if self._cases is not None:
            return frozenset({*(f"case_{c}" for c in self._cases), "default"})
        return frozenset({"true_output", "false_output"})

    def output_schema(self) -> dict[str, Any]:
        return {"type": "object", "properties": {port: {} for port in sorted(self.output_ports())}}

    async def run(self, inputs: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        data = inputs["input_data"]
        try:
            subject = get_path(data, self._path) if self._path else data
        except PathError as exc:
            raise KeyError(f"condition_field {exc}") from None
        if self._cases is not None:
            port = next((f"case_{c}" for c in self._cases if subject == c), "default")
            return {port: data}
        taken = bool(_OPERATORS[self._operator](subject, self._value))
        return {"true_output" if taken else "false_output": data}


register_node_type(SwitchNode)
