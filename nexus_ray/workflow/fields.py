"""Typed node inputs and their JSON Schemas (pydantic does the type work)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter, ValidationError


class _Missing:
    """Sentinel: a field with no default is required."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class InputField:
    """One input of a node: its name, type annotation and default (MISSING = required)."""

    name: str
    annotation: Any = Any
    default: Any = MISSING
    description: str | None = None
    extra_schema: dict[str, Any] = field(default_factory=dict)

    @property
    def required(self) -> bool:
        """True when the field has no default."""
        return self.default is MISSING

    def with_default(self, value: Any) -> InputField:
        """A copy whose default is ``value`` (a value given when the node was added)."""
        return InputField(self.name, self.annotation, value, self.description, self.extra_schema)

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema of this field, self-contained (no $ref)."""
        schema = json_schema_for(self.annotation)
        schema.update(self.extra_schema)
        if self.description:
            schema.setdefault("description", self.description)
        # A null default is left out: optional already says it, and OpenAPI drops nulls.
        if not self.required and self.default is not None and _is_json_value(self.default):
            schema["default"] = self.default
        return schema

    def validate(self, value: Any) -> Any:
        """Coerce ``value`` to the annotation; raises pydantic.ValidationError."""
        if self.annotation is Any:
            return value
        return type_adapter(self.annotation).validate_python(value)


def _is_json_value(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))


@lru_cache(maxsize=1024)
def _adapter_cached(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def type_adapter(annotation: Any) -> TypeAdapter[Any]:
    """A (cached where hashable) pydantic TypeAdapter for an annotation."""
    try:
        return _adapter_cached(annotation)
    except TypeError:  # unhashable annotation
        return TypeAdapter(annotation)


def json_schema_for(annotation: Any) -> dict[str, Any]:
    """JSON Schema for a type annotation with every $ref inlined; {} for Any."""
    if annotation is Any:
        return {}
    schema = copy.deepcopy(type_adapter(annotation).json_schema())
    defs = schema.pop("$defs", {})
    return _inline_refs(schema, defs, depth=0)


def _inline_refs(node: Any, defs: dict[str, Any], depth: int) -> Any:
    if isinstance(node, list):
        return [_inline_refs(item, defs, depth) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        if depth > 8:  # recursive model: stop expanding rather than loop forever
            return {"type": "object"}
        target = copy.deepcopy(defs.get(ref.removeprefix("#/$defs/"), {}))
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return _inline_refs({**target, **rest}, defs, depth + 1)
    return {key: _inline_refs(value, defs, depth) for key, value in node.items()}


def describe_validation_error(error: ValidationError, prefix: str) -> list[dict[str, Any]]:
    """Flatten a pydantic ValidationError into ``{"field", "message", "type"}`` entries."""
    out = []
    for item in error.errors(include_url=False):
        loc = ".".join(str(part) for part in (prefix, *item["loc"]) if part != "")
        out.append({"field": loc, "message": item["msg"], "type": item["type"]})
    return out
