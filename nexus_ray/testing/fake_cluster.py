"""A Ray cluster on one machine whose worker nodes Ray's real cluster autoscaler adds and
removes (Ray's fake multinode provider), for tests and benchmarks of scaling.

Ray ships ``ray.cluster_utils.AutoscalingCluster`` for this, but it fails as shipped (its
example config is not in the wheel) and its ``start()`` runs ``ray stop --force``, which
kills every Ray on the machine. This one starts the head on a private port and temp dir
and stops exactly the processes of that cluster, by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import psutil

# Ray 2.60 turns on token auth for `ray start` when ~/.ray/auth_token exists; a driver that
# joins by explicit address does not: the mode is set explicitly on both sides.
CLUSTER_ENV = {
    "RAY_FAKE_CLUSTER": "1",
    "AUTOSCALER_UPDATE_INTERVAL_S": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
}
WORKER_TYPE = "cpu_worker"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeCluster:
    """A head node without CPUs plus autoscaled fake worker nodes of ``worker_cpus`` each.

    Args:
        worker_cpus: CPUs of each worker node.
        min_workers: Worker nodes kept at all times.
        max_workers: The most worker nodes the autoscaler may add.
        idle_timeout_s: How long a worker node idles before the autoscaler removes it.
        upscaling_speed: The autoscaler's step (nodes added per round, as a share of the current).
    """

    def __init__(
        self,
        worker_cpus: int = 1,
        min_workers: int = 0,
        max_workers: int = 3,
        idle_timeout_s: float = 6.0,
        upscaling_speed: float = 1.0,
    ) -> None:
        self.worker_cpus, self.min_workers, self.max_workers = worker_cpus, min_workers, max_workers
        self.idle_timeout_s, self.upscaling_speed = idle_timeout_s, upscaling_speed
        self.temp_dir = tempfile.mkdtemp(prefix="nexus-fake-cluster-")
        self.port = _free_port()
        self.address = ""

    def config(self, gcs_address: str) -> dict[str, Any]:
        """The cluster launcher config the fake provider reads (Ray's fake_multi_node example)."""
        empty: dict[str, Any] = {"docker": {}, "auth": {}, "file_mounts": {}}
        commands = ("initialization", "setup", "head_setup", "worker_setup", "head_start_ray", "worker_start_ray")
        return {
            "cluster_name": "nexus-fake",
            "max_workers": self.max_workers,
            "provider": {
                "type": "fake_multinode",
                "use_node_id_as_ip": True,
                "disable_node_updaters": True,
                "disable_launch_config_check": True,
                "gcs_address": gcs_address,  # the provider assumes :6379 otherwise
            },
            "available_node_types": {
                "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
                WORKER_TYPE: {
                    "resources": {"CPU": self.worker_cpus, "object_store_memory": 100 * 2**20},
                    "node_config": {},
                    "min_workers": self.min_workers,
                    "max_workers": self.max_workers,
                },
            },
            "head_node_type": "ray.head.default",
            "upscaling_speed": self.upscaling_speed,
            "idle_timeout_minutes": self.idle_timeout_s / 60,
            **empty,
            **{f"{c}_commands": [] for c in commands},
            "cluster_synced_files": [],
            "file_mounts_sync_continuously": False,
            "rsync_exclude": [],
            "rsync_filter": [],
        }

    def start(self) -> str:
        """Start the head (and its autoscaler); return the address to join (``ip:port``)."""
        import ray

        node_ip = ray._private.services.get_node_ip_address()
        self.address = f"{node_ip}:{self.port}"
        config_path = Path(self.temp_dir, "autoscaling.json")
        config_path.write_text(json.dumps(self.config(self.address)))
        ray_bin = str(Path(sys.executable).with_name("ray"))
        command = [
            ray_bin,
            "start",
            "--head",
            f"--port={self.port}",
            f"--temp-dir={self.temp_dir}",
            "--num-cpus=0",
            "--include-dashboard=false",
            f"--dashboard-agent-listen-port={_free_port()}",
            f"--autoscaling-config={config_path}",
            "--disable-usage-stats",
        ]
        env = {**os.environ, **CLUSTER_ENV}
        for name in ("RAY_ADDRESS", "NEXUS_RAY_ADDRESS"):
            env.pop(name, None)
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start --head failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return self.address

    def driver_env(self) -> dict[str, str]:
        """Environment variables for a process that joins this cluster (e.g. ``nexus serve``)."""
        return {**CLUSTER_ENV, "RAY_ADDRESS": self.address}

    def processes(self) -> list[psutil.Process]:
        """Every process of this cluster."""
        return cluster_processes(self.temp_dir)

    def kill_node(self, node_id: str) -> list[int]:
        """SIGKILL every process of fake worker node ``node_id``; see :func:`kill_node_of`."""
        return kill_node_of(self.temp_dir, node_id)

    def stop(self, grace_s: float = 10.0) -> int:
        """Stop every process of this cluster by PID (SIGTERM, then SIGKILL after
        ``grace_s``) and remove its temp dir. Returns how many there were."""
        procs = self.processes()
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGTERM)
        _, alive = psutil.wait_procs(procs, timeout=grace_s)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=5)
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        return len(procs)

    def __enter__(self) -> FakeCluster:
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


def kill_node_of(temp_dir: str, node_id: str) -> list[int]:
    """SIGKILL every process of fake worker node ``node_id`` of the cluster in ``temp_dir``
    (its raylet, agents and workers), as if the machine vanished. Returns their PIDs."""
    killed = []
    for proc in cluster_processes(temp_dir):
        with contextlib.suppress(psutil.Error):
            if proc.environ().get("RAY_OVERRIDE_NODE_ID_FOR_TESTING") == node_id:
                proc.send_signal(signal.SIGKILL)
                killed.append(proc.pid)
    if not killed:
        raise LookupError(f"no process of node {node_id} in the cluster at {temp_dir}")
    return killed


def _holds_file_under(pid: int, prefix: str) -> bool:
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(prefix):
                    return True
    return False


def worker_nodes() -> list[dict[str, Any]]:
    """The alive worker nodes (those with CPUs) of the cluster this process has joined:
    ``{"node_id", "cpus"}`` each."""
    import ray

    return [
        {"node_id": n["NodeID"], "cpus": n["Resources"].get("CPU", 0)}
        for n in ray.nodes()
        if n["Alive"] and n["Resources"].get("CPU", 0) > 0
    ]
