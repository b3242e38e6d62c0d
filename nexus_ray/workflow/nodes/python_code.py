"""PythonCodeNode: app-author code whose free variables are its inputs."""

from __future__ import annotations

import builtins
import inspect
import symtable
from collections.abc import Callable
from types import CodeType
from typing import Any

from ...errors import WorkflowError
from ..fields import InputField
from ..node import Node, NodeContext, register_node_type
from ..typed import FunctionNode, function_node_class, signature_inputs

_BUILTINS = frozenset(dir(builtins))


class PythonCodeError(RuntimeError):
    """The code ran but did not produce a result."""


def free_variables(code: str) -> list[str]:
    """Names the code reads but never binds at top level (its inputs), in first-use order.

    Builtins and ``result`` (the output) are not inputs. Names read inside nested
    functions, lambdas and comprehensions count when they resolve to module globals.
    """
    table = symtable.symtable(code, "<node>", "exec")
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    bound |= {child.get_name() for child in table.get_children()}
    names: dict[str, None] = {}
    _collect_globals(table, names)
    return [n for n in names if n not in bound and n not in _BUILTINS and n != "result"]


def _collect_globals(table: symtable.SymbolTable, names: dict[str, None]) -> None:
    for sym in table.get_symbols():
        if sym.is_referenced() and (table.get_type() == "module" or sym.is_global()):
            names.setdefault(sym.get_name(), None)
    for child in table.get_children():
        _collect_globals(child, names)


class PythonCodeNode(Node):
    """Run a code string written by the app author (with the app's trust; imports allowed).

    Config:
        code: Python source. Its free variables are the node's inputs; it sets ``result``.
        function_name: Instead of reading ``result``, call this function defined in
            ``code``; its parameters are the inputs and its return value the result.

    Output: ``{"result": result}``.
    """

    config_params = frozenset({"code", "function_name"})

    def setup(self, code: str | None = None, function_name: str | None = None) -> None:
        if not isinstance(code, str) or not code.strip():
            raise WorkflowError(
                f"Node {self.node_id!r} (PythonCodeNode) needs a non-empty 'code' string.",
                node=self.node_id,
            )
        self._source = code
        self._function_name = function_name
        self._compiled: CodeType | None = None
        self._function: Callable[..., Any] | None = None
        self._compile()

    def _compile(self) -> None:
        try:
            self._compiled = compile(self._source, f"<node {self.node_id}>", "exec")
        except SyntaxError as exc:
            raise WorkflowError(
                f"Node {self.node_id!r}: syntax error in code at line {exc.lineno}: {exc.msg}.",
                node=self.node_id,
                line=exc.lineno,
            ) from None
        if self._function_name:
            self._function = self._load_function()

    def _code(self) -> CodeType:
        if self._compiled is None:
            self._compile()
        assert self._compiled is not None
        return self._compiled

    def _load_function(self) -> Callable[..., Any]:
        namespace: dict[str, Any] = {}
        exec(self._code(), namespace)  # noqa: S102 - app author's code, app's trust
        fn = namespace.get(self._function_name or "")
        if not callable(fn):
            raise WorkflowError(
                f"Node {self.node_id!r}: the code defines no function {self._function_name!r}.",
                node=self.node_id,
            )
        return fn  # type: ignore[no-any-return]

    def __getstate__(self) -> dict[str, Any]:
        # Code objects and exec'd functions are rebuilt from source after unpickling.
        return {k: v for k, v in self.__dict__.items() if k not in ("_compiled", "_function")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._compiled, self._function = None, None
        self._compile()

    def declare_inputs(self) -> dict[str, InputField]:
        if self._function is not None:
            return signature_inputs(self._function)
        return {name: InputField(name) for name in free_variables(self._source)}

    def output_ports(self) -> frozenset[str]:
        return frozenset({"result"})

    def output_schema(self) -> dict[str, Any]:
        return {"type": "object", "properties": {"result": {}}, "required": ["result"]}

    async def run(self, inputs: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        return await ctx.run_sync(self._execute, inputs)

    def _execute(self, inputs: dict[str, Any]) -> dict[str, Any]:
        if self._function is not None:
            return {"result": self._function(**inputs)}
        namespace = dict(inputs)
        exec(self._code(), namespace)  # noqa: S102 - app author's code, app's trust
        if "result" not in namespace:
            raise PythonCodeError(f"the code of node {self.node_id!r} did not set 'result'")
        return {"result": namespace["result"]}

    @classmethod
    def from_function(cls, fn: Callable[..., Any], name: str | None = None) -> type[FunctionNode]:
        """A node type that calls ``fn`` directly (typed inputs and output from its hints).

        Use it as ``builder.add_node(PythonCodeNode.from_function(fn), "node_id")``.
        """
        if not inspect.isfunction(fn):
            raise WorkflowError(f"from_function needs a Python function, got {fn!r}.")
        return function_node_class(fn, type_name=name)


register_node_type(PythonCodeNode)
