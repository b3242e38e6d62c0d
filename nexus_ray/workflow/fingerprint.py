"""A short digest of each node's definition, so a run resumed after a crash can tell
whether the nodes it already completed are still the nodes the workflow has now.

A node's definition is what decides its outputs: its type, the parameters given to
``add_node`` (a ``PythonCodeNode``'s code among them), the code of the function or class
behind it (for nodes that are not built in), and which outputs feed its inputs. Names,
descriptions, policies and resources are left out: they do not change what a node
returns. Digests are computed from code objects, not from pickles or addresses, so every
process computes the same ones for the same source and Python version.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import types
from collections.abc import Iterable, Mapping
from typing import Any

from .graph_types import Connection
from .node import Node

DIGEST_CHARS = 12


def node_fingerprints(nodes: Mapping[str, Node], incoming: Mapping[str, Iterable[Connection]]) -> dict[str, str]:
    """Node id → digest of that node's definition (see the module docstring)."""
    return {node_id: _digest(_definition(node, incoming[node_id])) for node_id, node in nodes.items()}


def _definition(node: Node, incoming: Iterable[Connection]) -> list[Any]:
    wiring = sorted((c.source, c.source_output, c.target_input) for c in incoming)
    return [node.get_type_name(), _class_code(type(node)), _canonical(node.definition), wiring]


def _class_code(cls: type[Node]) -> str:
    function = getattr(cls, "function", None)
    if function is not None:  # a node made from a function
        return _code_identity(function)
    if cls.__module__.startswith("nexus_ray."):  # built in: its parameters say what it does
        return ""
    return _code_identity(cls.run)


def _code_identity(obj: Any) -> str:
    """A digest of what a callable does (its bytecode, constants and names), the same in
    every process; a callable without Python code is named by its type."""
    target = inspect.unwrap(obj) if callable(obj) else obj
    code = getattr(target, "__code__", None)
    if code is None and callable(target) and not isinstance(target, type):
        code = getattr(type(target).__call__, "__code__", None)  # a callable object: its class's method
    if code is None:
        return f"<{type(target).__module__}.{getattr(target, '__qualname__', type(target).__qualname__)}>"
    return _digest(_code_parts(code))


def _code_parts(code: types.CodeType) -> list[Any]:
    consts = [_code_parts(c) if isinstance(c, types.CodeType) else _const(c) for c in code.co_consts]
    return [code.co_code.hex(), consts, list(code.co_names)]


def _const(value: Any) -> Any:
    if isinstance(value, frozenset):  # iteration order varies with the hash seed
        return sorted(map(repr, value))
    return repr(value)


def _canonical(params: Mapping[str, Any]) -> str:
    try:
        return json.dumps(params, sort_keys=True, default=_json_default)
    except (TypeError, ValueError):  # keys JSON cannot hold (tuples): compare their reprs
        return repr(sorted((repr(k), _json_default(v)) for k, v in params.items()))


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(map(repr, value))
    if callable(value):
        return _code_identity(value)
    return f"<{type(value).__module__}.{type(value).__qualname__}>"  # no address: the same everywhere


def _digest(parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:DIGEST_CHARS]
