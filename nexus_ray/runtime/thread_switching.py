"""How often a RunHost's threads hand over the GIL.

A RunHost runs synchronous node code in threads beside its event loop, and the loop
renews the host's leases. While many such nodes run pure-Python CPU work, every time the
loop (or the store thread) wants the GIL it waits for the holder's switch interval, once
per thread ahead of it: at CPython's default of 5 ms and 32 busy node threads, up to
~0.16 s a hand-over; a lease renewal takes several, so leases of live hosts lapsed, and
other hosts adopted and ran their runs again. Measured here (`benchmarks/bench_cpu_nodes.py`:
64 runs of a node doing 3 s of pure-Python work, 2 RunHosts, NEXUS_LEASE_S=10): at 5 ms,
11 runs failed with NodeCrashedError though no host died, 160 node executions for 64 runs,
271 s; at 0.5 ms, every run completed, each node ran once, 130 s.
"""

from __future__ import annotations

import sys

SWITCH_INTERVAL_S = 0.0005


def tune_thread_switching() -> None:
    """Set this process's GIL switch interval to SWITCH_INTERVAL_S (call once at start)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
