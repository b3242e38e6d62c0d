"""A RunHost hands the GIL over every 0.5 ms, so busy node threads cannot starve its loop
(the effect is measured by benchmarks/bench_cpu_nodes.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from nexus_ray.runtime.thread_switching import SWITCH_INTERVAL_S, tune_thread_switching


@pytest.fixture
def restored_interval() -> Iterator[float]:
    before = sys.getswitchinterval()
    yield before
    sys.setswitchinterval(before)


def test_the_switch_interval_is_a_tenth_of_cpythons_default(restored_interval: float) -> None:
    sys.setswitchinterval(0.005)  # CPython's default
    tune_thread_switching()
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S) == pytest.approx(0.0005)
