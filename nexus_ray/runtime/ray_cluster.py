"""Start or join Ray; stop it promptly, leaving no process behind."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import ray

from ..errors import RuntimeUnavailableError
from ..settings import Settings
from .haproxy_fate import BINARY_VARIABLE, bind_haproxy_to_its_parent
from .named_actors import NAMESPACE

logger = logging.getLogger("nexus_ray.runtime")
_HAPROXY_ENV = ("RAY_SERVE_ENABLE_HA_PROXY", "RAY_SERVE_THROUGHPUT_OPTIMIZED")


@dataclass
class RayRuntime:
    """Ray for this process: an embedded local instance, or a joined cluster.

    Attributes:
        ingress: "haproxy" or "default": which Serve proxy the cluster uses.
        mode: "embedded" (started here: stop ends its processes), "address" (connected
            here to settings.ray_address: stop disconnects) or "existing" (Ray was already
            initialised in this process by someone else: stop leaves it alone).
    """

    settings: Settings
    ingress: str = "default"
    mode: str = "existing"
    _temp_dir: str | None = None

    @property
    def started_here(self) -> bool:
        """True when this process started the local Ray instance."""
        return self.mode == "embedded"

    @property
    def logs_dir(self) -> str | None:
        """Where an embedded Ray keeps its processes' logs (the hosts' warnings are in its
        ``worker-*.err``); None when Ray was not started here. Removed when it stops."""
        return str(Path(self._temp_dir) / "session_latest" / "logs") if self._temp_dir else None

    def start(self) -> None:
        """Start an embedded Ray or join ``settings.ray_address`` / an initialised one."""
        self.ingress = choose_ingress(self.settings.ingress)
        if ray.is_initialized():
            self.mode = "existing"
            self.ingress = "haproxy" if os.environ.get(_HAPROXY_ENV[0]) == "1" else "default"
            return
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        for name in _HAPROXY_ENV:  # read by the Serve controller: set before Ray starts
            os.environ[name] = "1" if self.ingress == "haproxy" else "0"
        if self.settings.ray_address:
            ray.init(address=self.settings.ray_address, namespace=NAMESPACE, log_to_driver=False)
            self.mode = "address"
            return
        self._temp_dir = tempfile.mkdtemp(prefix="nexus-ray-")
        with for_ray_only((*HAPROXY_SIDE_PORTS, BINARY_VARIABLE)):
            if self.ingress == "haproxy":  # this machine's HAProxy: its side ports must be free here
                move_taken_haproxy_ports()
                bind_haproxy_to_its_parent(Path(self._temp_dir))  # a crash must not leave it on the port
            ray.init(
                address="local",
                num_cpus=self.settings.num_cpus,
                include_dashboard=False,
                log_to_driver=False,
                namespace=NAMESPACE,
                _temp_dir=self._temp_dir,
            )
        self.mode = "embedded"

    def stop(self) -> None:
        """Started here: end Ray and all its processes (by PID) within ~10 s. Connected
        here: disconnect. Already initialised by someone else: leave it running."""
        if not ray.is_initialized() or self.mode == "existing":
            return
        if self.mode == "address":
            ray.shutdown()
            return
        ours = psutil.Process().children(recursive=True)
        haproxy_files = haproxy_dir(ray.get_runtime_context().get_node_id())
        ray.shutdown()
        terminate(ours, grace_s=5.0)
        for directory in (self._temp_dir, haproxy_files):
            if directory:
                shutil.rmtree(directory, ignore_errors=True)


# HAProxy's stats and Prometheus listeners, beside the HTTP port: Serve's defaults.
HAPROXY_SIDE_PORTS = {"RAY_SERVE_HAPROXY_STATS_PORT": 8404, "RAY_SERVE_HAPROXY_METRICS_PORT": 9101}


def haproxy_dir(node_id: str) -> str:
    """Where Serve keeps the HAProxy config, sockets and logs of a Ray node (it never
    removes them: a dir per server started)."""
    from ray.serve._private.constants import RAY_SERVE_HAPROXY_CONFIG_FILE_LOC

    return os.path.join(os.path.dirname(RAY_SERVE_HAPROXY_CONFIG_FILE_LOC), node_id)


def move_taken_haproxy_ports() -> dict[str, int]:
    """Give HAProxy's stats and metrics listeners free ports where their fixed defaults are
    taken (unless set): a second embedded server on one machine used to die at start with
    "Address already in use" for 8404. Read by the Serve controller: call before Ray
    starts. The variables set."""
    from ..testing import free_port, port_is_free

    moved = {}
    for name, default in HAPROXY_SIDE_PORTS.items():
        if name not in os.environ and not port_is_free(default, "0.0.0.0"):  # where HAProxy binds them
            moved[name] = free_port()
            os.environ[name] = str(moved[name])
            logger.info("HAProxy's port %d is taken here: %s=%d", default, name, moved[name])
    return moved


@contextlib.contextmanager
def for_ray_only(names: Iterable[str]) -> Iterator[None]:
    """Environment variables set inside the block reach the processes ``ray.init`` starts
    there (Ray's processes inherit this one's environment, and Serve's actors read them),
    and are put back as they were afterwards. Left set, a process this one starts later
    (a test's or a notebook's own `nexus serve`) took this server's HAProxy side ports for
    ones set by its user, and its HAProxy died with "Address already in use"."""
    before = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def will_embed(settings: Settings) -> bool:
    """Whether :meth:`RayRuntime.start` would start an embedded local Ray (so the hosts
    run on this machine)."""
    return not ray.is_initialized() and not settings.ray_address


def choose_ingress(wanted: str) -> str:
    """Resolve "auto" to "haproxy" when the haproxy binary is on PATH, else "default"."""
    on_path = shutil.which("haproxy") is not None
    if wanted == "haproxy" and not on_path:
        raise RuntimeUnavailableError(
            "NEXUS_INGRESS=haproxy but no 'haproxy' on PATH: install it (apt-get install haproxy) "
            "or use NEXUS_INGRESS=default."
        )
    if wanted == "auto":
        return "haproxy" if on_path else "default"
    return wanted


def terminate(processes: list[psutil.Process], grace_s: float) -> None:
    """SIGTERM the still-running ``processes``, then SIGKILL what is left after ``grace_s``."""
    alive = [p for p in processes if _running(p)]
    for proc in alive:
        _signal(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    _, alive = psutil.wait_procs(alive, timeout=max(0.0, deadline - time.monotonic()))
    for proc in alive:
        _signal(proc, signal.SIGKILL)
    psutil.wait_procs(alive, timeout=2)


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _signal(proc: psutil.Process, sig: int) -> None:
    with contextlib.suppress(psutil.Error):
        proc.send_signal(sig)
