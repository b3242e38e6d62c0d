"""Workflow inputs: which node inputs are open, their JSON Schema, and routing of values.

Inputs are passed Kailash-style: ``{"x": 5}`` goes to every node with an unconnected
input ``x``; ``{"node_id": {"x": 5}}`` targets one node (and wins over the flat value).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ..errors import InputValidationError
from .fields import InputField, describe_validation_error
from .node import Node


class WorkflowInputs:
    """The open (unconnected) inputs of a workflow and how to fill them from a request."""

    def __init__(self, nodes: Mapping[str, Node], connected: set[tuple[str, str]]) -> None:
        self._nodes = nodes
        self.open_fields: dict[str, list[InputField]] = {
            node_id: [f for name, f in node.inputs.items() if (node_id, name) not in connected]
            for node_id, node in nodes.items()
        }
        self.by_name: dict[str, list[tuple[str, InputField]]] = {}
        for node_id, fields in self.open_fields.items():
            for f in fields:
                self.by_name.setdefault(f.name, []).append((node_id, f))

    def json_schema(self, title: str = "Inputs") -> dict[str, Any]:
        """JSON Schema of the inputs object: flat inputs plus per-node objects."""
        properties: dict[str, Any] = {}
        required: list[str] = []
        for name, users in self.by_name.items():
            properties[name] = _flat_schema(name, users)
            if any(f.required for _, f in users):
                required.append(name)
        for node_id, fields in self.open_fields.items():
            if fields:
                properties[node_id] = {
                    "type": "object",
                    "description": f"Inputs for node {node_id!r} only (override flat inputs).",
                    "properties": {f.name: f.json_schema() for f in fields},
                    "additionalProperties": self._nodes[node_id].accepts_any_input,
                }
        schema: dict[str, Any] = {
            "type": "object",
            "title": title,
            "properties": properties,
            "additionalProperties": False,
        }
        if required:
            schema["required"] = required
        return schema

    def resolve(self, raw: Any, workflow: str = "") -> dict[str, dict[str, Any]]:
        """Per-node input values for a request, validated; InputValidationError lists every field."""
        if not isinstance(raw, dict):
            raise InputValidationError(
                [{"field": "inputs", "message": "must be a JSON object", "type": "type_error"}],
                workflow=workflow,
            )
        errors: list[dict[str, Any]] = []
        targeted = {k: v for k, v in raw.items() if k in self._nodes and isinstance(v, dict)}
        self._check_unknown(raw, targeted, errors)
        resolved: dict[str, dict[str, Any]] = {}
        for node_id, fields in self.open_fields.items():
            values = self._node_values(node_id, fields, raw, targeted.get(node_id), errors)
            resolved[node_id] = values
        if errors:
            raise InputValidationError(_dedupe(errors), workflow=workflow)
        return resolved

    def _node_values(
        self,
        node_id: str,
        fields: list[InputField],
        raw: dict[str, Any],
        target: dict[str, Any] | None,
        errors: list[dict[str, Any]],
    ) -> dict[str, Any]:
        values = dict(self._nodes[node_id].static_inputs)
        if target is not None and self._nodes[node_id].accepts_any_input:
            values.update(target)
        for f in fields:
            if target is not None and f.name in target:
                loc, value = f"{node_id}.{f.name}", target[f.name]
            elif f.name in raw:
                loc, value = f.name, raw[f.name]
            elif not f.required:
                values[f.name] = f.default
                continue
            else:
                errors.append({"field": f.name, "message": "Field required", "type": "missing"})
                continue
            try:
                values[f.name] = f.validate(value)
            except ValidationError as exc:
                errors.extend(describe_validation_error(exc, loc))
        return values

    def _check_unknown(
        self, raw: dict[str, Any], targeted: dict[str, dict[str, Any]], errors: list[dict[str, Any]]
    ) -> None:
        for key in raw:
            if key not in self.by_name and key not in targeted:
                errors.append(_unknown(key, list(self.by_name)))
        for node_id, values in targeted.items():
            if self._nodes[node_id].accepts_any_input:
                continue
            names = [f.name for f in self.open_fields[node_id]]
            for key in values:
                if key not in names:
                    errors.append(_unknown(f"{node_id}.{key}", [f"{node_id}.{n}" for n in names]))


def _flat_schema(name: str, users: list[tuple[str, InputField]]) -> dict[str, Any]:
    schemas = [f.json_schema() for _, f in users]
    schema = next((s for s in schemas if s.get("type") or s.get("anyOf")), schemas[0])
    schema = dict(schema)
    if any(f.required for _, f in users):
        schema.pop("default", None)
    node_ids = ", ".join(node_id for node_id, _ in users)
    schema.setdefault("description", f"Input {name!r} of node(s) {node_ids}")
    return schema


def _unknown(field: str, known: list[str]) -> dict[str, Any]:
    close = difflib.get_close_matches(field, known, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else f"; known: {sorted(known)}"
    return {"field": field, "message": f"Unknown input{hint}", "type": "extra_forbidden"}


def _dedupe(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for e in errors:
        key = (e["field"], e["message"])
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out
