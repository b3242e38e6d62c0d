"""`nexus serve` as a subprocess a test starts, and stops (or kills) itself."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil


class ServerProcess:
    """One `nexus serve APP --port PORT` in ``cwd`` with extra environment variables.

    Its temp files (Ray's session dir among them) go to a dir of its own, removed by
    :meth:`stop`: a server that is killed cannot remove them itself. It is short, for
    the Unix socket paths Ray makes in it (at most 107 bytes)."""

    def __init__(self, app: Path, port: int, cwd: Path, env: dict[str, str], log: Path) -> None:
        self.port, self.log = port, log
        self.temp_dir = Path(tempfile.mkdtemp(prefix="nx-serve-"))
        env = {"TMPDIR": str(self.temp_dir), **env}
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    "from nexus_ray.channels.cli import main; main()",
                    "serve",
                    str(app),
                    "--port",
                    str(port),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                cwd=cwd,
                env={**os.environ, **env},
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_for_banner(self, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text()
            if "Press Ctrl-C to stop." in text:
                return text
            assert self.proc.poll() is None, f"nexus serve exited early:\n{text}"
            time.sleep(0.2)
        raise AssertionError(f"no banner within {timeout} s:\n{self.log.read_text()}")

    def ray_log_files(self) -> list[Path]:
        """The log files of the Ray this server started (in its own temp dir)."""
        return [p for p in self.temp_dir.glob("nexus-ray-*/session_*/logs/**/*") if p.is_file()]

    def tree(self) -> list[psutil.Process]:
        """Every process this server started (Ray's included)."""
        return psutil.Process(self.proc.pid).children(recursive=True)

    def kill_all(self) -> None:
        """SIGKILL the server and every process it started, as a crash would."""
        victims = [*self.tree(), psutil.Process(self.proc.pid)]
        for p in victims:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        psutil.wait_procs(victims, timeout=10)

    def stop(self) -> None:
        """SIGINT, then whatever is left is killed (used by fixtures after a failure); its
        temp files are removed."""
        try:
            self._stop()
        finally:
            shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _stop(self) -> None:
        if self.proc.poll() is not None:
            return
        tree = self.tree()
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for child in tree:
            if child.is_running():
                child.kill()
