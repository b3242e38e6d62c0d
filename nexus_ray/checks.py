"""The checks of numbers every layer takes from users (page sizes, versions, retries,
seconds, header values), written once: a bool is not a number, NaN is not a duration,
and a refusal names the argument."""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from .errors import InvalidRequestError, NexusError


def whole_number(
    value: object,
    what: str,
    *,
    low: int = 0,
    high: int | None = None,
    hint: str = "",
    error: type[NexusError] = InvalidRequestError,
    **details: Any,
) -> int:
    """``value`` when it is an int (not a bool) from ``low`` to ``high``; else ``error``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f">= {low}"
        raise error(f"{what} must be a whole number {bounds}, got {value!r}{hint}.", **details)
    return value


def is_number(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is an int or float that is not a bool and not NaN."""
    return not isinstance(value, bool) and isinstance(value, int | float) and not math.isnan(value)


def is_amount(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is a finite number of 0 or more (e.g. a resource amount)."""
    return is_number(value) and 0 <= value < math.inf


def seconds(
    value: object,
    what: str,
    *,
    allow_zero: bool = False,
    finite: bool = False,
    error: type[NexusError] = InvalidRequestError,
    **details: Any,
) -> float | None:
    """``value`` when it is None or a number of seconds: more than 0 (0 too with
    ``allow_zero``), finite with ``finite`` (else infinity means no limit); else ``error``."""
    if value is None:
        return None
    if is_number(value):
        in_range = value > 0 or (allow_zero and value == 0)
        if in_range and not (finite and value == math.inf):
            return float(value)
    kind = "a finite number" if finite else "a number"
    low = "0 or more" if allow_zero else "more than 0"
    raise error(f"{what} must be {kind} of seconds ({low}), got {value!r}.", **details)


def decimal(text: str) -> int | None:
    """The value of ``text`` when it is ASCII digits (a header's number), else None:
    ``str.isdigit`` is also true of "²", which ``int`` refuses."""
    return int(text) if text.isascii() and text.isdigit() else None
