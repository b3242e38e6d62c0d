"""The number checks every layer shares (nexus_ray/checks.py)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from nexus_ray import InvalidRequestError, WorkflowError
from nexus_ray.checks import decimal, is_amount, seconds, whole_number


def test_a_whole_number_in_range_is_kept_and_anything_else_named() -> None:
    assert whole_number(3, "n", low=1, high=5) == 3
    for bad in (0, 6, True, 2.0, "3", None):
        message = r"^n must be a whole number from 1 to 5, got .+; hint\.$"
        with pytest.raises(InvalidRequestError, match=message) as info:
            whole_number(bad, "n", low=1, high=5, hint="; hint", field="n")
        assert info.value.details == {"field": "n"}
    with pytest.raises(WorkflowError, match="retries must be a whole number >= 0, got -1"):
        whole_number(-1, "retries", error=WorkflowError)


@pytest.mark.parametrize(
    ("value", "options", "kept"),
    [(None, {}, True), (1.5, {}, True), (math.inf, {}, True), (0, {"allow_zero": True}, True), (0, {}, False),
     (-1, {"allow_zero": True}, False), (math.nan, {}, False), (True, {}, False), ("5", {}, False),
     (math.inf, {"finite": True}, False), (30, {"finite": True}, True)],
)  # fmt: skip
def test_seconds_are_numbers_not_bools_nor_nan(value: Any, options: dict[str, bool], kept: bool) -> None:
    if kept:
        assert seconds(value, "t", **options) == (None if value is None else float(value))
    else:
        with pytest.raises(InvalidRequestError, match="t must be a (finite )?number of seconds"):
            seconds(value, "t", **options)


def test_a_header_number_is_ascii_digits_only() -> None:
    assert [decimal(t) for t in ("12", "0", "", "²", "-1", "1.5", " 3")] == [12, 0, None, None, None, None, None]


@pytest.mark.parametrize(
    ("value", "amount"),
    [(0, True), (2.5, True), (-1, False), (True, False), (math.nan, False), (math.inf, False), ("1", False)],
)
def test_an_amount_is_a_finite_number_of_0_or_more(value: object, amount: bool) -> None:
    assert is_amount(value) is amount
