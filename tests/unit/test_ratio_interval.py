"""The benchmarks judge a ratio target by the pairs' geometric mean and its interval."""

from __future__ import annotations

import math

import pytest

from benchmarks.common import interval_text, ratio_interval, shows_at_least


def test_the_geometric_mean_lies_inside_an_interval_that_holds_the_pairs_spread() -> None:
    pairs = [0.61, 0.75, 0.8, 0.86, 0.9, 0.99, 1.43]
    result = ratio_interval(pairs)
    assert result["gmean"] == pytest.approx(math.prod(pairs) ** (1 / len(pairs)), abs=1e-3)
    assert min(pairs) < result["low"] < result["gmean"] < result["high"] < max(pairs)
    assert result["pairs"] == 7


def test_more_pairs_of_the_same_spread_narrow_the_interval() -> None:
    few, many = ratio_interval([0.7, 0.8, 0.9, 1.0]), ratio_interval([0.7, 0.8, 0.9, 1.0] * 10)
    assert few["gmean"] == many["gmean"]
    assert many["high"] - many["low"] < (few["high"] - few["low"]) / 2


def test_the_same_pairs_give_the_same_interval() -> None:
    assert ratio_interval([0.7, 0.9, 1.1]) == ratio_interval([0.7, 0.9, 1.1])


def test_equal_pairs_leave_no_doubt() -> None:
    assert ratio_interval([0.85] * 5) == {"gmean": 0.85, "low": 0.85, "high": 0.85, "pairs": 5}


@pytest.mark.parametrize("pairs", [[], [0.8], [0.8, 0.0], [0.8, -1.0]])
def test_too_few_or_non_positive_ratios_are_refused_by_name(pairs: list[float]) -> None:
    with pytest.raises(ValueError, match="two or more positive ratios"):
        ratio_interval(pairs)


def test_a_target_is_shown_only_when_all_of_the_interval_reaches_it() -> None:
    interval = {"gmean": 0.821, "low": 0.786, "high": 0.86, "pairs": 49}
    assert not shows_at_least(interval, 0.8)  # the mean is above, the interval is not
    assert shows_at_least(interval, 0.75)
    assert interval_text(interval) == "82% (95% interval 79-86%, 49 pairs)"
