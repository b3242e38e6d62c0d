"""`ray start --head` on a private port and temp dir, stopped by PID (never `ray stop`,
which would end every Ray on the machine)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import psutil

from ..runtime.ray_cluster import terminate
from . import free_port

# Ray 2.60 turns on token auth for `ray start` when ~/.ray/auth_token exists; a driver that
# joins by explicit address does not: the mode is set explicitly on both sides.
HEAD_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
INHERITED_ADDRESSES = ("RAY_ADDRESS", "NEXUS_RAY_ADDRESS")


class LocalRayHead:
    """A Ray head of its own on this machine.

    Args:
        args: More ``ray start`` arguments (e.g. ``--num-cpus=2``, a dashboard port).
        env: More environment variables for the head (its workers inherit them).
        cwd: The head's working directory (its workers resolve relative paths there).
    """

    def __init__(self, args: Sequence[str] = (), env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.args, self.cwd = list(args), cwd
        self.env = {k: v for k, v in os.environ.items() if k not in INHERITED_ADDRESSES} | HEAD_ENV | (env or {})
        self.temp_dir = tempfile.mkdtemp(prefix="nexus-ray-head-")
        self.port = free_port()
        self.address = ""

    def start(self) -> str:
        """Start the head; the address to join (``ip:port``)."""
        import ray

        self.address = f"{ray._private.services.get_node_ip_address()}:{self.port}"
        command = [
            str(Path(sys.executable).with_name("ray")),
            "start",
            "--head",
            f"--port={self.port}",
            f"--temp-dir={self.temp_dir}",
            f"--dashboard-agent-listen-port={free_port()}",
            "--disable-usage-stats",
            *self.args,
        ]
        done = subprocess.run(command, env=self.env, cwd=self.cwd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start --head failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return self.address

    def driver_env(self) -> dict[str, str]:
        """Environment variables for a process that joins this head (e.g. ``nexus serve``)."""
        return {**HEAD_ENV, "RAY_ADDRESS": self.address}

    def processes(self) -> list[psutil.Process]:
        """Every process of this cluster."""
        return cluster_processes(self.temp_dir)

    def stop(self, grace_s: float = 10.0) -> list[psutil.Process]:
        """Stop every process of this cluster by PID (SIGTERM, SIGKILL after ``grace_s``),
        remove its temp dir; the processes that were still left (none, normally)."""
        terminate(self.processes(), grace_s)
        left = self.processes()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        return left

    def __enter__(self) -> LocalRayHead:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cluster_processes(temp_dir: str) -> list[psutil.Process]:
    """Every process of the cluster in ``temp_dir``: its command line names the dir, or it
    holds a file there (Ray sends every component's output to ``<temp_dir>/session_*/logs``)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.pid == os.getpid():
            continue
        if temp_dir in " ".join(proc.info["cmdline"] or []) or _holds_file_under(proc.pid, temp_dir):
            found.append(proc)
    return found


def _holds_file_under(pid: int, prefix: str) -> bool:
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(prefix):
                    return True
    return False
