"""Every Python example in the README runs (on the shared Ray; the example's own app
joins it and stops only what it started)."""

from __future__ import annotations

import re

import httpx
import pytest

from nexus_ray import Nexus

from .conftest import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_readme_has_python_examples() -> None:
    assert BLOCKS


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_python_block_runs(index: int, app: Nexus) -> None:
    namespace: dict[str, object] = {"__name__": f"readme_block_{index}"}
    exec(compile(BLOCKS[index], f"README.md block {index}", "exec"), namespace)  # noqa: S102
    # The shared app is untouched by the example's start/stop.
    r = httpx.post(f"{app.url}/workflows/double_plus_one/execute", json={"inputs": {"x": 1}}, timeout=30)
    assert r.json()["outputs"]["add_one"]["result"]["value"] == 3
