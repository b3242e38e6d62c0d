"""A Ray cluster on one machine whose worker nodes Ray's real cluster autoscaler adds and
removes (Ray's fake multinode provider), for tests and benchmarks of scaling.

Ray ships ``ray.cluster_utils.AutoscalingCluster`` for this, but it fails as shipped (its
example config is not in the wheel) and its ``start()`` runs ``ray stop --force``, which
kills every Ray on the machine. This one is a :class:`LocalRayHead` (private port and temp
dir, stopped by PID) with the same autoscaling config.
"""

from __future__ import annotations

import contextlib
import json
import signal
from pathlib import Path
from typing import Any

import psutil

from .local_head import LocalRayHead, cluster_processes

FAKE_ENV = {"RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1"}
WORKER_TYPE = "cpu_worker"


class FakeCluster(LocalRayHead):
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
        super().__init__(["--num-cpus=0", "--include-dashboard=false"], FAKE_ENV)
        self.worker_cpus, self.min_workers, self.max_workers = worker_cpus, min_workers, max_workers
        self.idle_timeout_s, self.upscaling_speed = idle_timeout_s, upscaling_speed

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

        gcs_address = f"{ray._private.services.get_node_ip_address()}:{self.port}"
        config_path = Path(self.temp_dir, "autoscaling.json")
        config_path.write_text(json.dumps(self.config(gcs_address)))
        self.args.append(f"--autoscaling-config={config_path}")
        return super().start()

    def driver_env(self) -> dict[str, str]:
        """Environment variables for a process that joins this cluster."""
        return {**super().driver_env(), **FAKE_ENV}

    def kill_node(self, node_id: str) -> list[int]:
        """SIGKILL every process of fake worker node ``node_id``; see :func:`kill_node_of`."""
        return kill_node_of(self.temp_dir, node_id)


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


def worker_nodes() -> list[dict[str, Any]]:
    """The alive worker nodes (those with CPUs) of the cluster this process has joined:
    ``{"node_id", "cpus"}`` each."""
    import ray

    return [
        {"node_id": n["NodeID"], "cpus": n["Resources"].get("CPU", 0)}
        for n in ray.nodes()
        if n["Alive"] and n["Resources"].get("CPU", 0) > 0
    ]
