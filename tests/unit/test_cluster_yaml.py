"""cluster.yaml passes Ray's own cluster-launcher validation (what `ray up` runs first,
offline), and that validation is real: it refuses broken variants."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_YAML = Path(__file__).resolve().parents[2] / "cluster.yaml"


@pytest.fixture
def raw() -> dict[str, Any]:
    return yaml.safe_load(CLUSTER_YAML.read_text())  # type: ignore[no-any-return]


def test_cluster_yaml_is_a_valid_launcher_config(raw: dict[str, Any]) -> None:
    config = prepare_config(copy.deepcopy(raw))
    validate_config(config)
    types = config["available_node_types"]
    assert set(types) == {"head", "cpu_worker", "gpu_worker"} and config["head_node_type"] == "head"
    assert types["head"]["resources"] == {"CPU": 0}  # runs never land on the head
    assert types["cpu_worker"]["min_workers"] >= 2  # production: one node may fail
    assert (config["upscaling_speed"], config["idle_timeout_minutes"]) == (0.25, 15)
    setup = "\n".join(config["setup_commands"])
    assert "pip install -q -c ~/nexus_ray/constraints.txt -e ~/nexus_ray" in setup  # the versions make test passed
    assert "NEXUS_STORE_URL=postgresql://" in setup


@pytest.mark.parametrize(
    "break_it",
    [
        lambda c: c.update(idle_timeout_minute=5),
        lambda c: c["available_node_types"]["cpu_worker"].update(min_workers="two"),
        lambda c: c.update(upscaling_speed=-1),
        lambda c: c.update(head_node_type="nope"),
    ],
    ids=["misspelt key", "string count", "negative speed", "unknown head type"],
)
def test_validation_refuses_broken_variants(raw: dict[str, Any], break_it: Callable[[dict[str, Any]], None]) -> None:
    broken = copy.deepcopy(raw)
    break_it(broken)
    with pytest.raises((jsonschema.ValidationError, ValueError, RuntimeError)):
        validate_config(prepare_config(broken))
