"""The README's Python examples run, in order, in one namespace (as a reader would paste
them), on the shared Ray; the example's own app stops only what it started."""

from __future__ import annotations

import re

import httpx

from nexus_ray import Nexus

from .conftest import ROOT

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def test_readme_python_examples_run(app: Nexus) -> None:
    assert len(BLOCKS) >= 2
    namespace: dict[str, object] = {"__name__": "readme"}
    try:
        for index, block in enumerate(BLOCKS):
            exec(compile(block, f"README.md python block {index}", "exec"), namespace)  # noqa: S102
    finally:
        example = namespace.get("app")
        if isinstance(example, Nexus):
            example.stop()
    # The shared app is untouched by the example's start/stop.
    r = httpx.post(f"{app.url}/workflows/double_plus_one/execute", json={"inputs": {"x": 1}}, timeout=30)
    assert r.json()["outputs"]["add_one"]["result"]["value"] == 3
