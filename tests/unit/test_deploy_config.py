"""The Serve config file of the example app: in sync with `nexus deploy --config-only`,
valid by Serve's own schema; bad builder args and a missing address are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ray.serve.schema import ServeDeploySchema
from typer.testing import CliRunner

from nexus_ray import ConfigurationError, Settings
from nexus_ray.channels.cli import run_cli
from nexus_ray.deploy import build_app, render_serve_config, serve_config
from nexus_ray.loader import load_app
from nexus_ray.scaling import ScalingPolicy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = "examples/quickstart.py"


def nexus(*args: str) -> tuple[int, str]:
    runner = CliRunner()
    with runner.isolation() as (out, err, *_):
        code = run_cli(list(args))
        return code, out.getvalue().decode() + err.getvalue().decode()


def test_the_committed_config_is_what_nexus_deploy_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NEXUS_HOST", "NEXUS_PORT", "NEXUS_SCALING", "NEXUS_ENV"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(ROOT)
    committed = (ROOT / "deployments" / "nexus.yaml").read_text()
    assert committed == render_serve_config(load_app(EXAMPLE), EXAMPLE), (
        "run: nexus deploy examples/quickstart.py --config-only"
    )
    ServeDeploySchema.model_validate(yaml.safe_load(committed))


def test_config_only_writes_the_file_without_a_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    target = tmp_path / "out" / "nexus.yaml"
    code, out = nexus("deploy", EXAMPLE, "--config-only", "-o", str(target))
    assert code == 0 and str(target) in out
    assert yaml.safe_load(target.read_text())["applications"][0]["import_path"] == "nexus_ray.deploy:build_app"


def test_an_autoscaled_ingress_gets_serve_autoscaling_in_the_config() -> None:
    app = load_app(str(ROOT / EXAMPLE))
    app.settings = Settings(scaling=ScalingPolicy.production())
    ingress = serve_config(app, EXAMPLE)["applications"][0]["deployments"][0]
    assert "num_replicas" not in ingress
    assert ingress["autoscaling_config"]["min_replicas"] == 2 and ingress["autoscaling_config"]["max_replicas"] == 8


def test_bad_builder_args_are_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match="'app'"):
        build_app({"ap": EXAMPLE})
    with pytest.raises(ConfigurationError, match="run_hosts"):
        build_app({"app": str(ROOT / EXAMPLE), "settings": {"run_hosts": 0}})


def test_deploy_without_an_address_says_how(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.chdir(ROOT)
    code, out = nexus("deploy", EXAMPLE)
    assert code == 3 and "--address" in out
