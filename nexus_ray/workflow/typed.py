"""Typed Python functions as nodes: inputs and outputs from type hints (pydantic)."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import WorkflowError
from .fields import MISSING, InputField, describe_validation_error, json_schema_for, type_adapter
from .node import Node, NodeContext, register_node_type

NODE_ATTR = "__nexus_node__"


class NodeInputError(TypeError):
    """A value reaching a typed node does not match its type hints."""


def signature_inputs(fn: Callable[..., Any]) -> dict[str, InputField]:
    """Inputs of ``fn`` from its signature and type hints (``*args``/``**kwargs`` refused)."""
    hints = _type_hints(fn)
    fields: dict[str, InputField] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise WorkflowError(
                f"Function {fn.__qualname__!r} takes *{param.name}; a node needs named "
                "parameters so its input schema is known.",
                function=fn.__qualname__,
            )
        default = MISSING if param.default is param.empty else param.default
        fields[param.name] = InputField(param.name, hints.get(param.name, Any), default)
    return fields


def return_annotation(fn: Callable[..., Any]) -> Any:
    """The function's return type hint, or Any."""
    return _type_hints(fn).get("return", Any)


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    # String annotations (PEP 563) may name classes local to the defining function;
    # those the function uses are in its closure.
    closure = dict(zip(fn.__code__.co_freevars, (c.cell_contents for c in fn.__closure__ or ()), strict=False))
    try:
        return typing.get_type_hints(fn, localns=closure)
    except Exception as exc:  # a forward reference that does not resolve
        raise WorkflowError(
            f"Cannot resolve the type hints of {fn.__qualname__!r}: {exc}. Define the types it "
            "uses at module level (or without `from __future__ import annotations`).",
            function=fn.__qualname__,
        ) from exc


class FunctionNode(Node):
    """A node that calls a typed Python function; output is ``{"result": return_value}``.

    Subclasses are made by :func:`function_node_class`; ``function`` is bound there.
    """

    function: Callable[..., Any]

    def declare_inputs(self) -> dict[str, InputField]:
        return signature_inputs(self.function)

    def output_ports(self) -> frozenset[str]:
        return frozenset({"result"})

    def output_schema(self) -> dict[str, Any] | None:
        returns = return_annotation(self.function)
        result = json_schema_for(returns) if returns is not Any else {}
        return {"type": "object", "properties": {"result": result}, "required": ["result"]}

    async def run(self, inputs: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        kwargs = self._coerce(inputs)
        fn = self.function
        if inspect.iscoroutinefunction(fn):
            value = await fn(**kwargs)
        else:
            value = await ctx.run_sync(fn, **kwargs)
        return {"result": _plain(value)}

    def _coerce(self, inputs: dict[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        errors: list[dict[str, Any]] = []
        for name, field in self.inputs.items():
            if name not in inputs:
                continue
            try:
                kwargs[name] = field.validate(inputs[name])
            except ValidationError as exc:
                errors.extend(describe_validation_error(exc, name))
        if errors:
            raise NodeInputError("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        return kwargs


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


def function_node_class(
    fn: Callable[..., Any], *, type_name: str | None = None, base: type[FunctionNode] = FunctionNode
) -> type[FunctionNode]:
    """A FunctionNode subclass bound to ``fn`` (validated now, so errors show at definition)."""
    name: str = type_name or getattr(fn, "__name__", None) or "function"
    cls = type(name, (base,), {"function": staticmethod(fn), "type_name": name, "__doc__": fn.__doc__})
    annotations = [f.annotation for f in signature_inputs(fn).values()]
    for annotation in (*annotations, return_annotation(fn)):
        _check_supported(fn, annotation)
    return cls


def _check_supported(fn: Callable[..., Any], annotation: Any) -> None:
    if annotation is Any:
        return
    try:
        type_adapter(annotation)
    except Exception as exc:  # pydantic cannot build a schema for this type
        raise WorkflowError(
            f"Function {fn.__qualname__!r} uses type {annotation!r}, which has no JSON "
            f"schema: {exc}. Use JSON-able types or pydantic models.",
            function=fn.__qualname__,
        ) from exc


def node(fn: Callable[..., Any] | None = None, *, name: str | None = None) -> Any:
    """Decorator: make a typed function (sync or async) a node type.

    The function stays callable as before; ``WorkflowBuilder.add_node(fn, "id")`` and
    ``add_node("name", "id")`` both use it. Its input schema comes from the parameters'
    type hints and defaults, its output (``{"result": ...}``) from the return hint.

    Args:
        fn: The function (when used as ``@node``).
        name: Registry name; defaults to the function's ``__name__``.
    """

    def wrap(func: Callable[..., Any]) -> Callable[..., Any]:
        cls = function_node_class(func, type_name=name)
        register_node_type(cls)
        setattr(func, NODE_ATTR, cls)
        return func

    return wrap(fn) if fn is not None else wrap


def node_class_of(obj: Any) -> type[Node] | None:
    """The node class an object stands for: a Node subclass, or a (decorated) function."""
    if isinstance(obj, type) and issubclass(obj, Node):
        return obj
    attached = getattr(obj, NODE_ATTR, None)
    if attached is not None:
        return attached  # type: ignore[no-any-return]
    if callable(obj) and (inspect.isfunction(obj) or inspect.ismethod(obj)):
        return function_node_class(obj)
    return None
