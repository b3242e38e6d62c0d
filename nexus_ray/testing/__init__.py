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

    It lies below the kernel's ephemeral range: a port from that range (what binding port 0
    gives) can be taken by any outgoing connection before the server meant to get it binds
    it, and Ray and Serve make many while they start (HAProxy once failed to start so)."""
    low = _ephemeral_low()
    high = low if low - FIRST_PORT >= 1000 else 65536
    for _ in range(1000):
        port = _random.randrange(FIRST_PORT, high)
        if port not in _handed_out and _bindable(port):
            _handed_out.add(port)
            return port
    raise RuntimeError(f"No free loopback port between {FIRST_PORT} and {high} after 1,000 tries.")


def _ephemeral_low(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> int:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):  # not Linux: the IANA range starts here
        return 49152


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
