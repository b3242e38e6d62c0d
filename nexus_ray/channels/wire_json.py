"""JSON as it crosses a channel: standard JSON (RFC 8259) both ways.

Python's ``json`` reads and writes ``NaN``, ``Infinity`` and ``-Infinity``, which are not
JSON: JavaScript's ``JSON.parse`` and most other parsers refuse a document holding them.
So a request carrying one is refused by name, and so is a number too large for a float
(``1e400``, which Python would read as infinity), and a response never holds one: a
non-finite float (a node may compute one) is written as ``null``, as JavaScript's
``JSON.stringify`` and pydantic's models write it. Inside the runtime and the store the
value stays a float, so the Python API returns it unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, NoReturn

import pydantic_core


class RefusedJSONError(ValueError):
    """JSON that is well formed but refused; the message says why."""


class NonStandardJSONError(RefusedJSONError):
    """The text holds ``NaN``, ``Infinity`` or ``-Infinity``."""

    def __init__(self, constant: str) -> None:
        super().__init__(f"{constant} is not JSON (RFC 8259); send a number, or null")
        self.constant = constant


class OutOfRangeNumberError(RefusedJSONError):
    """The text holds a number beyond a 64-bit float's range (read as infinity otherwise)."""

    def __init__(self, number: str) -> None:
        super().__init__(f"the number {number} is out of range (at most about 1.8e308 either way)")
        self.number = number


class TooDeepJSONError(RefusedJSONError):
    """The text nests deeper than the parser can follow (Python's recursion limit)."""

    def __init__(self) -> None:
        super().__init__("it nests too deep to parse (thousands of levels)")


def _refuse(constant: str) -> NoReturn:
    raise NonStandardJSONError(constant)


def _finite(number: str) -> float:
    value = float(number)
    if math.isinf(value):
        raise OutOfRangeNumberError(number)
    return value


_DECODER = json.JSONDecoder(parse_constant=_refuse, parse_float=_finite)


def loads(text: str | bytes | bytearray) -> Any:
    """Parse standard JSON (UTF-8 when bytes). Raises ``json.JSONDecodeError`` when
    malformed, ``RefusedJSONError`` for NaN or Infinity, a number out of a float's
    range or too deep a nesting,
    ``UnicodeDecodeError``."""
    if not isinstance(text, str):
        text = bytes(text).decode(json.detect_encoding(text), "surrogatepass")  # as json.loads does
    try:
        return _DECODER.decode(text)
    except RecursionError:
        raise TooDeepJSONError() from None


def non_finite_at(value: Any) -> str | None:
    """The path (``x[1].y``) of the first NaN or infinity in JSON-like ``value``, or None.
    For JSON parsed elsewhere (the MCP SDK reads NaN, Infinity and 1e400 as floats)."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return where
        if isinstance(item, dict):
            stack.extend((child, f"{where}.{key}" if where else str(key)) for key, child in item.items())
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
    return None


def dumps(value: Any) -> bytes:
    """``value`` as standard JSON (non-finite floats as ``null``)."""
    try:
        return pydantic_core.to_json(value, inf_nan_mode="null")
    except pydantic_core.PydanticSerializationError:
        return _escaped(value, None).encode()


def dumps_text(value: Any, fallback: Callable[[Any], Any] | None = None) -> str:
    """:func:`dumps` as text (WebSocket frames, SSE data, MCP text content); ``fallback``
    turns what JSON cannot hold into something it can."""
    try:
        return pydantic_core.to_json(value, inf_nan_mode="null", fallback=fallback).decode()
    except pydantic_core.PydanticSerializationError:
        return _escaped(value, fallback)


def _escaped(value: Any, fallback: Callable[[Any], Any] | None) -> str:
    """``value`` as JSON with every non-ASCII character escaped, converted as :func:`dumps`
    converts it; for a lone surrogate: JSON can carry "\\ud800" (a request may send one,
    and an error naming it echoes it), UTF-8 cannot encode it. Before, the 404 for such a
    session id was a 500, and a WebSocket's error frame naming it ended the socket. What
    pydantic cannot convert at all raises its error again here."""
    return json.dumps(pydantic_core.to_jsonable_python(value, inf_nan_mode="null", fallback=fallback))
