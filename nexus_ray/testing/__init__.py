"""Helpers for testing nexus_ray apps and their scaling: free ports, a private local Ray
head (:mod:`.local_head`), a fake autoscaling cluster (:mod:`.fake_cluster`)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Ray's worker processes listen on 10002-19999 by default; ports from here up to the
# kernel's ephemeral range are left to servers that a caller places itself.
FIRST_PORT = 20000
_handed_out: set[int] = set()
_random = random.Random()  # its own: a test that seeds the module's must not fix the ports


def free_port() -> int:
    """A free loopback TCP port, not handed out before by this process.

    It lies outside the kernel's ephemeral range: a port from that range (what binding port
    0 gives) can be taken by any outgoing connection before the server meant to get it binds
    it, and Ray and Serve make many while they start (HAProxy once failed to start so)."""
    ranges = _port_ranges(*_ephemeral_range())
    if not ranges:
        raise RuntimeError(f"The kernel's ephemeral ports leave no ports from {FIRST_PORT} up for servers.")
    for _ in range(1000):
        port = _random.choice(_random.choices(ranges, weights=[len(r) for r in ranges])[0])
        if port not in _handed_out and port_is_free(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"No free loopback port in {ranges} after 1,000 tries.")


def _port_ranges(ephemeral_low: int, ephemeral_high: int) -> list[range]:
    """The ports from FIRST_PORT up that lie below or above the ephemeral range."""
    below = range(FIRST_PORT, ephemeral_low)
    above = range(max(FIRST_PORT, ephemeral_high + 1), 65536)
    return [r for r in (below, above) if len(r)]


def _ephemeral_range(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> tuple[int, int]:
    try:
        low, high = (int(part) for part in path.read_text().split())
        return low, high
    except (OSError, ValueError):  # not Linux: the IANA range
        return 49152, 65535


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a TCP socket can bind ``host``:``port`` now."""
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True
