"""Standard JSON both ways on every channel (channels/wire_json.py)."""

from __future__ import annotations

import datetime
import json
import math

import pydantic_core
import pytest

from nexus_ray import InvalidRequestError
from nexus_ray.channels.cli_inputs import json_object, parse_value
from nexus_ray.channels.wire_json import (
    NonStandardJSONError,
    OutOfRangeNumberError,
    TooDeepJSONError,
    dumps,
    dumps_text,
    loads,
)


def strict(text: str | bytes) -> object:
    """What a standard parser (JavaScript's JSON.parse) makes of ``text``."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in a document that claims to be JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_a_non_standard_constant_is_refused_by_name(constant: str) -> None:
    with pytest.raises(NonStandardJSONError, match=f"^{constant} is not JSON") as info:
        loads(f'{{"x": [1, {constant}]}}')
    assert info.value.constant == constant


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1.8e308", "1E309"])
def test_a_number_beyond_a_float_s_range_is_refused_not_read_as_infinity(number: str) -> None:
    with pytest.raises(OutOfRangeNumberError, match=f"^the number {number} is out of range") as info:
        loads(f'{{"x": [1, {number}]}}')
    assert info.value.number == number
    assert json.loads(number) in (math.inf, -math.inf)  # what Python's own parser makes of it


def test_numbers_within_range_read_as_python_does() -> None:
    text = "[1.5, -1.7e308, 1e-400, 123456789012345678901234567890, 0.1]"
    assert loads(text) == json.loads(text) == [1.5, -1.7e308, 0.0, 123456789012345678901234567890, 0.1]


def test_standard_json_reads_as_before_from_text_and_bytes() -> None:
    doc = {"s": "NaN", "n": [1, 2.5, -1e308, None, True], "u": "é"}
    text = json.dumps(doc)
    assert loads(text) == loads(text.encode()) == loads(bytearray(text.encode("utf-16"))) == doc
    assert loads(b"\xef\xbb\xbf" + text.encode()) == doc  # a UTF-8 BOM, as json.loads allows
    with pytest.raises(json.JSONDecodeError):
        loads("{")


def test_non_finite_floats_are_written_as_null() -> None:
    value = {"nan": math.nan, "inf": [math.inf, -math.inf], "x": 1.5}
    assert strict(dumps(value)) == strict(dumps_text(value)) == {"nan": None, "inf": [None, None], "x": 1.5}


def test_dumps_text_falls_back_for_what_json_cannot_hold() -> None:
    assert strict(dumps_text({"thing": object()}, fallback=lambda v: "an object")) == {"thing": "an object"}


def test_the_cli_reads_nan_as_a_string_and_refuses_it_inside_json() -> None:
    assert parse_value("NaN") == "NaN" and parse_value("5") == 5
    with pytest.raises(InvalidRequestError, match="'1e400': the number 1e400 is out of range"):
        parse_value("1e400")  # not the string "1e400", which looks like the number went through
    with pytest.raises(InvalidRequestError, match="--input-json is not valid JSON: the number 2e308 is out of range"):
        json_object('{"x": 2e308}', "--input-json")
    with pytest.raises(InvalidRequestError, match="--input-json is not valid JSON: Infinity is not JSON"):
        json_object('{"x": Infinity}', "--input-json")


def test_too_deep_a_nesting_is_refused_not_a_recursion_error() -> None:
    with pytest.raises(TooDeepJSONError, match="nests too deep"):
        loads("[" * 100_000 + "]" * 100_000)
    inner = loads("[" * 100 + "]" * 100)  # a nesting Python can follow still reads
    for _ in range(99):
        inner = inner[0]
    assert inner == []


def test_a_lone_surrogate_is_written_as_its_escape_and_other_failures_still_raise() -> None:
    # JSON can carry "\ud800" and an error naming a sent id echoes it; UTF-8 cannot encode it.
    at = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)  # converted as pydantic converts it
    value = {"session_id": "\ud800", "x": float("nan"), "xs": (float("inf"),), "at": at}
    written = {"session_id": "\ud800", "x": None, "xs": [None], "at": "2026-01-01T00:00:00Z"}
    assert json.loads(dumps(value)) == json.loads(dumps_text(value)) == written
    with pytest.raises(pydantic_core.PydanticSerializationError):
        dumps({"a": object(), "b": "\ud800"})
