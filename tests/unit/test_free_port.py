"""free_port hands out ports outside Ray's worker range and the kernel's ephemeral range."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from nexus_ray import testing
from nexus_ray.testing import FIRST_PORT, _ephemeral_low, free_port


def test_ports_lie_between_rays_workers_and_the_ephemeral_range() -> None:
    low = _ephemeral_low()
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == 200  # never the same one twice
    assert all(FIRST_PORT <= p < low for p in ports)


def test_a_port_in_use_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        free = spare.getsockname()[1]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        busy = taken.getsockname()[1]
        picks = iter([busy, free])
        monkeypatch.setattr(testing._random, "randrange", lambda a, b: next(picks))
        assert free_port() == free


def test_the_ephemeral_range_is_read_from_the_kernel(tmp_path: Path) -> None:
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("40000\t60999\n")
    assert _ephemeral_low(ranges) == 40000
    assert _ephemeral_low(tmp_path / "absent") == 49152
