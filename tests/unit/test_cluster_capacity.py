"""A node asking for resources no node of the cluster has fails (at once, or after waiting
for a node to join) instead of hanging; the usual request costs no wait."""

from __future__ import annotations

import asyncio
import time

import pytest

from nexus_ray import ResourcesUnavailableError, WorkflowBuilder, WorkflowError
from nexus_ray.runtime import cluster_capacity
from nexus_ray.runtime.cluster_capacity import ClusterCapacity, NodeTotals, demand, fits

LAPTOP = {"CPU": 2.0, "memory": 8e9, "node:127.0.0.1": 1.0}


def test_demand_names_ray_resources_and_counts_the_default_cpu() -> None:
    assert demand({}) == {"CPU": 1.0}
    assert demand({"num_gpus": 0.5}) == {"CPU": 1.0, "GPU": 0.5}
    assert demand({"num_cpus": 0, "resources": {"tpu": 4}, "memory": 2**30}) == {"tpu": 4.0, "memory": 2.0**30}
    assert demand({"accelerator_type": "A100"}) == {"CPU": 1.0, "accelerator_type:A100": 0.001}


def test_a_request_fits_a_node_that_has_every_amount() -> None:
    assert fits({"CPU": 2.0}, LAPTOP)
    assert not fits({"CPU": 3.0}, LAPTOP)
    assert not fits({"CPU": 1.0, "GPU": 1.0}, LAPTOP)


def _capacity(clusters: list[NodeTotals], wait_s: float) -> tuple[ClusterCapacity, list[int]]:
    """A capacity reading ``clusters`` in turn (the last one for ever); the read count."""
    reads = [0]

    def list_nodes() -> NodeTotals:
        reads[0] += 1
        return clusters[min(reads[0], len(clusters)) - 1]

    return ClusterCapacity(list_nodes, wait_s), reads


def test_a_fitting_request_goes_on_at_once_and_reads_the_cluster_once_per_refresh() -> None:
    capacity, reads = _capacity([[LAPTOP]], wait_s=0)
    waits: list[dict[str, float]] = []

    async def main() -> None:
        for _ in range(50):
            await capacity.wait_for_fit("n", {"num_cpus": 1}, waits.append)

    asyncio.run(main())
    assert reads[0] == 1 and waits == []


def test_without_wait_a_request_no_node_fits_fails_at_once_naming_what_is_missing() -> None:
    capacity, reads = _capacity([[LAPTOP]], wait_s=0)
    started = time.monotonic()
    with pytest.raises(ResourcesUnavailableError) as caught:
        asyncio.run(capacity.wait_for_fit("train", {"num_gpus": 1}, lambda _: None))
    assert time.monotonic() - started < 1.0
    message = str(caught.value)
    assert "node 'train' asks for {'CPU': 1.0, 'GPU': 1.0}" in message
    assert "the closest node has {'CPU': 2.0, 'GPU': 0.0}" in message
    assert caught.value.details["node"] == "train"
    assert reads[0] == 1  # the view it just read is fresh enough to refuse on


def test_a_refusal_reads_a_view_older_than_a_quarter_second_again(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu_node = {"CPU": 8.0, "GPU": 1.0}
    capacity, reads = _capacity([[LAPTOP], [LAPTOP, gpu_node]], wait_s=0)

    async def main() -> None:
        await capacity.nodes()  # the view of a moment ago: no GPU
        capacity._read_at -= cluster_capacity.RECHECK_S  # ... a quarter second old now
        await capacity.wait_for_fit("train", {"num_gpus": 1}, lambda _: None)  # the GPU node joined meanwhile

    asyncio.run(main())
    assert reads[0] == 2


def test_a_request_waits_for_a_node_that_joins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_capacity, "REFRESH_S", 0.01)
    gpu_node = {"CPU": 8.0, "GPU": 1.0}
    capacity, reads = _capacity([[LAPTOP], [LAPTOP], [LAPTOP], [LAPTOP, gpu_node]], wait_s=5)
    waits: list[dict[str, float]] = []
    asyncio.run(capacity.wait_for_fit("train", {"num_gpus": 1}, waits.append))
    assert waits == [{"CPU": 1.0, "GPU": 1.0}]  # told once
    assert reads[0] == 4


def test_a_request_fails_when_no_node_joins_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_capacity, "REFRESH_S", 0.01)
    capacity, _ = _capacity([[]], wait_s=0.05)
    with pytest.raises(ResourcesUnavailableError, match=r"within 0.05 s \(NEXUS_RESOURCE_WAIT_S\); the cluster has no"):
        asyncio.run(capacity.wait_for_fit("n", {"num_cpus": 1}, lambda _: None))


@pytest.mark.parametrize(
    ("resources", "wording"),
    [
        ({"num_cpus": float("nan")}, "num_cpus must be a finite non-negative number"),
        ({"num_gpus": float("inf")}, "num_gpus must be a finite non-negative number"),
        ({"num_cpus": True}, "num_cpus must be a finite non-negative number"),
        ({"memory": -1}, "memory must be a finite non-negative number"),
        ({"resources": {"tpu": float("nan")}}, "'resources' must map names to amounts"),
        ({"resources": {1: 1}}, "'resources' must map names to amounts"),
        ({"accelerator_type": 100}, "accelerator_type must be a name"),
    ],
)
def test_resource_requests_ray_cannot_take_are_refused_when_the_node_is_added(
    resources: dict[str, object], wording: str
) -> None:
    with pytest.raises(WorkflowError, match=wording):
        WorkflowBuilder().add_node("PythonCodeNode", "n", {"code": "result = 1"}, resources=resources)


def test_runs_asking_at_once_share_one_read_of_the_cluster() -> None:
    capacity, reads = _capacity([[LAPTOP]], wait_s=0)

    async def main() -> None:
        await asyncio.gather(*(capacity.wait_for_fit("n", {}, lambda _: None) for _ in range(100)))

    asyncio.run(main())
    assert reads[0] == 1


def test_the_wait_is_the_setting_else_none_on_an_embedded_ray_and_minutes_on_a_cluster() -> None:
    assert cluster_capacity.resource_wait_s(None, embedded=True) == 0.0
    assert cluster_capacity.resource_wait_s(None, embedded=False) == cluster_capacity.CLUSTER_WAIT_S == 600.0
    assert cluster_capacity.resource_wait_s(5.0, embedded=True) == 5.0
    assert cluster_capacity.resource_wait_s(0.0, embedded=False) == 0.0


def test_many_waiting_nodes_share_one_read_per_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_capacity, "REFRESH_S", 0.05)
    capacity, reads = _capacity([[LAPTOP]], wait_s=0.3)

    async def wait(i: int) -> None:
        await asyncio.sleep(i * 0.001)  # nodes start waiting one after another, as runs arrive
        await capacity.wait_for_fit(f"n{i}", {"num_gpus": 1}, lambda _: None)

    async def main() -> list[BaseException | None]:
        return await asyncio.gather(*(wait(i) for i in range(200)), return_exceptions=True)

    outcomes = asyncio.run(main())
    assert all(isinstance(o, ResourcesUnavailableError) for o in outcomes)
    assert reads[0] <= 30, reads[0]  # at most one read a quarter second, not one per waiting node (426)
