"""Dotted paths into node outputs: ``"result.value"`` reads ``outputs["result"]["value"]``."""

from __future__ import annotations

from typing import Any

from ..checks import decimal


class PathError(LookupError):
    """A dotted path does not exist in a value."""


def split_path(path: str) -> tuple[str, ...]:
    """Split ``"result.value"`` into ``("result", "value")``."""
    return tuple(path.split("."))


def get_path(value: Any, parts: tuple[str, ...]) -> Any:
    """Follow ``parts`` through dicts (by key), sequences (by index) and attributes."""
    current = value
    for i, part in enumerate(parts):
        current = _step(current, part, ".".join(parts[: i + 1]))
    return current


def _step(current: Any, part: str, so_far: str) -> Any:
    if isinstance(current, dict):
        if part in current:
            return current[part]
        raise PathError(f"{so_far!r} not found (keys: {sorted(map(str, current))})")
    if isinstance(current, (list, tuple)) and decimal(part.removeprefix("-")) is not None:
        try:
            return current[int(part)]
        except IndexError:
            raise PathError(f"{so_far!r}: index out of range (length {len(current)})") from None
    if hasattr(current, part):
        return getattr(current, part)
    raise PathError(f"{so_far!r} not found in a value of type {type(current).__name__}")
