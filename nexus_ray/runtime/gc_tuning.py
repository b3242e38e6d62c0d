"""Garbage-collector settings for the long-lived, allocation-heavy processes (hosts, ingress).

Every request allocates many short-lived objects, and CPython's default thresholds
(700, 10, 10) then run full collections over everything the process holds often. Measured
here (durable double_plus_one, wrk 32 connections): 770 -> 1,070 req/s and p99 180 -> 80 ms
with a larger first threshold. Objects alive at start-up are frozen out of collections.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    """Raise the young-generation threshold and freeze what exists now (call once at start)."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, max(gen1, 20), max(gen2, 20))
