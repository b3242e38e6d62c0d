"""Helpers for testing nexus_ray apps and their scaling: free ports, a private local Ray
head (:mod:`.local_head`), a fake autoscaling cluster (:mod:`.fake_cluster`)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A free loopback TCP port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
