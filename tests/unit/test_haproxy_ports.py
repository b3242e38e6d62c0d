"""HAProxy's stats and metrics ports, fixed by Serve, move when taken (a second embedded
server on one machine), without Ray."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from nexus_ray.runtime import ray_cluster
from nexus_ray.runtime.haproxy_fate import BINARY_VARIABLE
from nexus_ray.settings import load_settings
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


def test_moved_ports_and_the_wrapper_reach_ray_only_not_later_child_processes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Left in this process's environment, a `nexus serve` it started later (the test suite's
    # own servers) took them as its user's and bound the same side ports: "Address already
    # in use" (CI, with 8404 held by a server started outside the suite).
    taken = free_port()
    names = ("RAY_SERVE_HAPROXY_STATS_PORT", BINARY_VARIABLE)
    for name in names:
        monkeypatch.setenv(name, "0")  # so that the test's end restores them as absent
        monkeypatch.delenv(name)
    monkeypatch.setattr(ray_cluster, "HAPROXY_SIDE_PORTS", {names[0]: taken})
    monkeypatch.setattr(ray_cluster, "choose_ingress", lambda wanted: "haproxy")
    monkeypatch.setattr(ray_cluster.tempfile, "mkdtemp", lambda prefix: str(tmp_path))
    monkeypatch.setattr("ray.serve._private.haproxy.get_haproxy_binary", lambda: "/usr/sbin/haproxy")
    seen_by_ray: dict[str, str | None] = {}
    monkeypatch.setattr(ray_cluster.ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray_cluster.ray, "init", lambda **_: seen_by_ray.update({n: os.environ.get(n) for n in names}))
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", taken))
        holder.listen()
        ray_cluster.RayRuntime(load_settings()).start()
    assert seen_by_ray[names[0]] not in (None, str(taken))
    if sys.platform == "linux":
        assert seen_by_ray[BINARY_VARIABLE] == str(tmp_path / "nexus-haproxy")
    assert [os.environ.get(name) for name in names] == [None, None]
