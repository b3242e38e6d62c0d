"""Values in the form the store keeps them: JSON's types, as they read back."""

from __future__ import annotations

from typing import Any

import pydantic_core

from .errors import InvalidRequestError


def as_stored(value: Any, what: str = "A value") -> Any:
    """``value`` as the store writes it and reads it back: JSON's types (a datetime, UUID
    or Decimal becomes its string, a tuple or set a list, int dict keys strings; NaN and
    infinities stay floats). A run, or a session in memory, that goes on with this sees
    what a resumed run or a reactivated session will see. InvalidRequestError naming
    ``what`` when JSON cannot hold it."""
    try:
        return pydantic_core.to_jsonable_python(value)
    except (ValueError, RecursionError) as exc:  # pydantic's serialization error, a cycle
        raise InvalidRequestError(f"{what} cannot be stored as JSON: {exc}") from exc
