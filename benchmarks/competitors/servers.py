"""Starting the comparison servers (bare FastAPI, kailash-nexus) as child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from benchmarks.common import ROOT, free_port

KAILASH_VERSION = "2.16.0"
KAILASH_VENV = ROOT / "benchmarks" / ".venvs" / "kailash"


def kailash_python() -> Path:
    """The kailash virtualenv's python, created and filled on first use."""
    python = KAILASH_VENV / "bin" / "python"
    marker = KAILASH_VENV / f".kailash-nexus-{KAILASH_VERSION}"
    if not marker.exists():
        print(f"installing kailash-nexus {KAILASH_VERSION} into {KAILASH_VENV.relative_to(ROOT)} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(KAILASH_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", f"kailash-nexus=={KAILASH_VERSION}"],
            check=True,
            timeout=1200,
        )
        marker.touch()
    return python


def bare_fastapi_command(port: int) -> list[str]:
    """uvicorn with one worker serving competitors/bare_fastapi.py."""
    app = "benchmarks.competitors.bare_fastapi:app"
    return [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]


def kailash_command(port: int) -> list[str]:
    """kailash-nexus 2.16 serving the same workflow from its own virtualenv."""
    return [str(kailash_python()), str(ROOT / "benchmarks" / "competitors" / "kailash_server.py"), str(port)]


@contextmanager
def serving(
    command_for: Callable[[int], list[str]], ready_path: str = "/docs", timeout_s: float = 120
) -> Iterator[str]:
    """Run ``command_for(port)`` until the block ends; yields its base URL once it answers."""
    port = free_port()
    command = command_for(port)
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:  # not a pipe: a chatty server would block on a full one
        process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
        try:
            _wait_ready(process, log, url + ready_path, timeout_s)
            yield url
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)  # its own process group, started above
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def _wait_ready(process: subprocess.Popen[bytes], log: IO[bytes], url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"{process.args} exited with {process.returncode}: {log.read().decode()[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{process.args} did not answer {url} within {timeout_s:.0f} s")
