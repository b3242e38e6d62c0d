"""The HAProxy wrapper: the process it becomes dies with its parent (Linux)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from nexus_ray.runtime.haproxy_fate import BINARY_VARIABLE, bind_haproxy_to_its_parent, write_wrapper
from nexus_ray.runtime.ray_cluster import for_ray_only

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")
SLEEP = "/bin/sleep"

# A parent that starts `program 60`, reports the child's pid, then waits to be killed.
PARENT = (
    "import subprocess, sys, time; c = subprocess.Popen([sys.argv[1], '60']); print(c.pid, flush=True); time.sleep(60)"
)


def orphan_of_a_killed_parent(program: str) -> psutil.Process:
    """Start ``program 60`` from a parent process, SIGKILL the parent; the child."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, program], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = psutil.Process(int(parent.stdout.readline()))
    time.sleep(0.5)
    assert child.name() == "sleep"  # a wrapper has become the program it wraps
    parent.kill()
    parent.wait()
    return child


def gone(proc: psutil.Process, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_a_plain_child_outlives_its_killed_parent_but_a_wrapped_one_does_not(tmp_path: Path) -> None:
    plain = orphan_of_a_killed_parent(SLEEP)
    try:
        assert not gone(plain, within_s=1.0)  # how HAProxy kept the port after a crash
    finally:
        plain.kill()
    wrapped = orphan_of_a_killed_parent(str(write_wrapper(tmp_path, SLEEP)))
    assert gone(wrapped, within_s=5.0)


def test_the_wrapper_passes_arguments_and_exit_status_through(tmp_path: Path) -> None:
    wrapper = write_wrapper(tmp_path, "/bin/sh")
    done = subprocess.run([str(wrapper), "-c", "echo $0 $1; exit 3", "a", "b"], capture_output=True, text=True)
    assert done.returncode == 3 and done.stdout.strip() == "a b"


def test_serve_is_pointed_at_the_wrapper_unless_the_user_chose_a_binary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BINARY_VARIABLE, raising=False)
    for start in ("first", "second"):  # a later start in this process gets a wrapper of its own
        (tmp_path / start).mkdir()
        with for_ray_only([BINARY_VARIABLE]):  # as RayRuntime.start calls it
            wrapper = bind_haproxy_to_its_parent(tmp_path / start)
            assert wrapper == tmp_path / start / "nexus-haproxy" and os.environ[BINARY_VARIABLE] == str(wrapper)
        assert BINARY_VARIABLE not in os.environ
    monkeypatch.setenv(BINARY_VARIABLE, "/opt/haproxy/bin/haproxy")
    assert bind_haproxy_to_its_parent(tmp_path) is None
    assert os.environ[BINARY_VARIABLE] == "/opt/haproxy/bin/haproxy"


def test_a_python_path_no_shebang_can_hold_leaves_haproxy_unwrapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(BINARY_VARIABLE, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/my venv/bin/python")
    assert bind_haproxy_to_its_parent(tmp_path) is None and BINARY_VARIABLE not in os.environ
