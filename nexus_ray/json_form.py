"""Values in the form the store keeps them: JSON's types, as they read back."""

from __future__ import annotations

from typing import Any

import pydantic_core

from .errors import InvalidRequestError


def stored_form(value: Any) -> Any:
    """``value`` written as the store writes it and read back as the store reads it: JSON's
    types (a datetime, UUID or Decimal becomes its string, a tuple or set a list, int dict
    keys strings; NaN and infinities stay floats). Raises ValueError when JSON cannot hold
    it (an unknown type, a string with a lone surrogate, a cycle) or RecursionError.

    A round trip, not pydantic's ``to_jsonable_python``: that one keeps a lone surrogate,
    which the write then refuses, after the node that made it."""
    return pydantic_core.from_json(pydantic_core.to_json(value))


def as_stored(value: Any, what: str = "A value") -> Any:
    """:func:`stored_form` of ``value``. A run, or a session in memory, that goes on with
    it sees what a resumed run or a reactivated session will see. InvalidRequestError
    naming ``what`` when JSON cannot hold it."""
    try:
        return stored_form(value)
    except (ValueError, RecursionError) as exc:  # pydantic's serialization error, a cycle
        raise InvalidRequestError(f"{what} cannot be stored as JSON: {exc}") from exc
