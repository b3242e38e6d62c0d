"""HAProxy's stats and metrics ports, fixed by Serve, move when taken (a second embedded
server on one machine), without Ray."""

from __future__ import annotations

import os
import socket

import pytest

from nexus_ray.runtime import ray_cluster
from nexus_ray.testing import free_port


def test_haproxy_side_ports_move_only_when_their_default_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    taken, idle, preset = free_port(), free_port(), free_port()
    monkeypatch.setattr(
        ray_cluster,
        "HAPROXY_SIDE_PORTS",
        {"NEXUS_TEST_TAKEN_PORT": taken, "NEXUS_TEST_IDLE_PORT": idle, "NEXUS_TEST_PRESET_PORT": preset},
    )
    for name in ("NEXUS_TEST_TAKEN_PORT", "NEXUS_TEST_IDLE_PORT"):
        monkeypatch.setenv(name, "0")  # so that the test's end restores them as absent
        monkeypatch.delenv(name)
    monkeypatch.setenv("NEXUS_TEST_PRESET_PORT", "1234")
    with socket.socket() as holder, socket.socket() as other:
        holder.bind(("0.0.0.0", taken))
        holder.listen()
        other.bind(("0.0.0.0", preset))  # taken too, but set by the user: left alone
        moved = ray_cluster.move_taken_haproxy_ports()
    assert list(moved) == ["NEXUS_TEST_TAKEN_PORT"] and moved["NEXUS_TEST_TAKEN_PORT"] != taken
    assert os.environ["NEXUS_TEST_TAKEN_PORT"] == str(moved["NEXUS_TEST_TAKEN_PORT"])
    assert "NEXUS_TEST_IDLE_PORT" not in os.environ and os.environ["NEXUS_TEST_PRESET_PORT"] == "1234"
