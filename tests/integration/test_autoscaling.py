"""Serve autoscaling of the ingress from the scaling policy: a burst raises the replicas
and they fall back afterwards (a `nexus serve` of its own, on Serve's default proxy)."""

from __future__ import annotations

import concurrent.futures
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import ROOT, free_port
from .server_process import ServerProcess

POLICY = {
    "ingress_min_replicas": 1,
    "ingress_max_replicas": 3,
    "up": {"queue_above": 2, "for_s": 1, "cooldown_s": 1},
    "down": {"queue_below": 1, "for_s": 4, "cooldown_s": 4},
}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    env = {
        "NEXUS_HOME": str(tmp_path / ".nexus"),
        "NEXUS_INGRESS": "default",
        "NEXUS_SCALING": json.dumps(POLICY),
    }
    process = ServerProcess(
        ROOT / "tests" / "integration" / "secure_app.py", free_port(), tmp_path, env, tmp_path / "log"
    )
    try:
        process.wait_for_banner()
        yield process
    finally:
        process.stop()


def replicas(url: str) -> int | None:
    return httpx.get(f"{url}/ready", timeout=30).json()["ingress_replicas"]  # type: ignore[no-any-return]


def test_a_burst_raises_the_ingress_replicas_and_they_fall_back(server: ServerProcess) -> None:
    url = server.url
    assert replicas(url) == 1
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                r = client.post(f"{url}/workflows/slow/execute", json={"inputs": {"seconds": 0.5}})
                assert r.status_code == 200, r.text

    started = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        workers = [pool.submit(load) for _ in range(16)]
        peak, up_after = 1, None
        while time.monotonic() - started < 40 and peak < 2:
            peak = max(peak, replicas(url) or 0)
            up_after = time.monotonic() - started if peak >= 2 else None
            time.sleep(0.5)
        stop.set()
        for worker in workers:
            worker.result()  # every request of the burst succeeded
    assert peak >= 2 and up_after is not None, "the burst did not raise the replicas"
    calm = time.monotonic()
    while time.monotonic() - calm < 60 and replicas(url) != 1:
        time.sleep(0.5)
    assert replicas(url) == 1, "the replicas did not fall back"
    back = time.monotonic() - calm
    print(f"\nserve autoscaling: {peak} replicas {up_after:.1f} s into the burst; back to 1 {back:.1f} s after it")
