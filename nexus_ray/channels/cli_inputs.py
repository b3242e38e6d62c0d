"""Workflow inputs from the command line: ``-i k=v`` (JSON values where valid JSON),
``--input-json``, ``--input-file`` and stdin."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InvalidRequestError
from .wire_json import OutOfRangeNumberError, RefusedJSONError, loads


def parse_value(text: str) -> Any:
    """JSON when ``text`` is valid JSON (``5`` is a number, ``true`` a boolean), else the
    string (``NaN`` is not JSON, so it is the string "NaN"). A number too large for a float
    is refused: read as a string it would look like a number that went through."""
    try:
        return loads(text)
    except OutOfRangeNumberError as exc:
        raise InvalidRequestError(f"{text!r}: {exc}.", value=text) from None
    except (json.JSONDecodeError, RefusedJSONError):
        return text


def parse_pairs(pairs: list[str], what: str = "--input") -> dict[str, Any]:
    """``["k=v", ...]`` as a dict (values through :func:`parse_value`)."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidRequestError(f"{what} {pair!r} must be KEY=VALUE, e.g. -i x=5 or -i name=bob.", value=pair)
        parsed[key] = parse_value(value)
    return parsed


def json_object(text: str, source: str) -> dict[str, Any]:
    """A JSON object from ``text`` (``source`` names where it came from, for the error)."""
    try:
        value = loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"{source} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
        ) from None
    except RefusedJSONError as exc:
        raise InvalidRequestError(f"{source} is not valid JSON: {exc}.") from None
    if not isinstance(value, dict):
        raise InvalidRequestError(f"{source} must be a JSON object, got {type(value).__name__}.")
    return value


def collect_inputs(
    pairs: list[str], input_json: str | None, input_file: Path | None, stdin_text: str | None
) -> dict[str, Any]:
    """Inputs from every source; later ones win: stdin, --input-file, --input-json, -i."""
    inputs: dict[str, Any] = {}
    if stdin_text and stdin_text.strip():
        inputs |= json_object(stdin_text, "stdin")
    if input_file is not None:
        try:
            text = input_file.read_text()
        except OSError as exc:
            raise InvalidRequestError(f"Cannot read --input-file {input_file}: {exc.strerror}.") from None
        inputs |= json_object(text, f"--input-file {input_file}")
    if input_json is not None:
        inputs |= json_object(input_json, "--input-json")
    return inputs | parse_pairs(pairs)
