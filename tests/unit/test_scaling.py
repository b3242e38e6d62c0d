"""The scaling policy: its defaults, its checks, and how it maps onto Serve's
autoscaling_config and the cluster autoscaler (cluster.yaml follows the production policy)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from nexus_ray import Settings
from nexus_ray.scaling import ScaleUp, ScalingPolicy

ROOT = Path(__file__).resolve().parents[2]


def test_the_default_suits_a_laptop() -> None:
    policy = Settings().scaling
    assert not policy.autoscales_ingress and (policy.workers_min, policy.workers_max) == (0, 0)
    assert (policy.up.queue_above, policy.up.for_s, policy.up.step_fraction) == (100, 300, 0.25)  # the seed's
    assert (policy.down.queue_below, policy.down.for_s, policy.down.cooldown_s) == (10, 900, 600)


def test_serve_autoscaling_config() -> None:
    config = ScalingPolicy.production().serve_autoscaling_config()
    assert config == {
        "min_replicas": 2,
        "initial_replicas": 2,
        "max_replicas": 8,
        "target_ongoing_requests": 100,
        "upscale_delay_s": 300,
        "downscale_delay_s": 900,
        "look_back_period_s": 30.0,
        "metrics_interval_s": 10.0,
    }
    from ray.serve.config import AutoscalingConfig

    AutoscalingConfig(**config)  # Serve accepts it


def test_cluster_yaml_follows_the_production_policy() -> None:
    cluster = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    wanted = ScalingPolicy.production().cluster_autoscaler()
    assert cluster["upscaling_speed"] == wanted["upscaling_speed"]
    assert cluster["idle_timeout_minutes"] == wanted["idle_timeout_minutes"]
    cpu = cluster["available_node_types"]["cpu_worker"]
    assert {"min_workers": cpu["min_workers"], "max_workers": cpu["max_workers"]} == wanted["cpu_worker"]


def test_settings_read_the_policy_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEXUS_SCALING", '{"ingress_min_replicas": 1, "ingress_max_replicas": 3}')
    settings = Settings()
    assert settings.scaling.autoscales_ingress and Settings(**settings.portable()).scaling == settings.scaling


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"ingress_min_replicas": 3, "ingress_max_replicas": 2}, "at least its minimum"),
        ({"up": ScaleUp(for_s=60, cooldown_s=120)}, "up.cooldown_s"),
        ({"workers_max": -1}, "greater than or equal to 0"),
    ],
)
def test_policies_that_cannot_work_are_refused(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ScalingPolicy(**options)  # type: ignore[arg-type]
