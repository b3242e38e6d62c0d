"""free_port hands out ports outside Ray's worker range and the kernel's ephemeral range."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from nexus_ray import testing
from nexus_ray.testing import FIRST_PORT, _ephemeral_range, _port_ranges, free_port


def test_ports_lie_above_rays_workers_and_outside_the_ephemeral_range() -> None:
    low, high = _ephemeral_range()
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == 200  # never the same one twice
    assert all(p >= FIRST_PORT and not low <= p <= high for p in ports)


def test_the_ranges_skip_the_ephemeral_ports_wherever_they_lie() -> None:
    assert _port_ranges(32768, 60999) == [range(FIRST_PORT, 32768), range(61000, 65536)]
    assert _port_ranges(1024, 65535) == []  # nothing left: free_port says so
    assert _port_ranges(10000, 40000) == [range(40001, 65536)]


def test_a_port_in_use_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        free = spare.getsockname()[1]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        busy = taken.getsockname()[1]
        picks = iter([busy, free])
        monkeypatch.setattr(testing._random, "choice", lambda r: next(picks))
        assert free_port() == free


def test_the_ephemeral_range_is_read_from_the_kernel(tmp_path: Path) -> None:
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("40000\t60999\n")
    assert _ephemeral_range(ranges) == (40000, 60999)
    assert _ephemeral_range(tmp_path / "absent") == (49152, 65535)


def test_no_room_outside_the_ephemeral_range_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(testing, "_ephemeral_range", lambda: (1024, 65535))
    with pytest.raises(RuntimeError, match="ephemeral ports leave no ports"):
        free_port()
