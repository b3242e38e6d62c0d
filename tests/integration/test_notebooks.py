"""Every notebook in notebooks/ runs top to bottom without an error (nbclient, a fresh
kernel with its own embedded Ray, on a port and NEXUS_HOME of the test's choosing)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import ROOT, free_port

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel inherits this environment: its own Ray (not the shared test cluster), a free
    # port, a fresh home; it stops what it started in its last cell.
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("NEXUS_PORT", str(free_port()))
    monkeypatch.setenv("NEXUS_HOME", str(tmp_path / ".nexus"))
    monkeypatch.setenv("NEXUS_INGRESS", "default")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError naming the cell on any error
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any(h.startswith("<svg") for h in html), "the workflow graph renders as SVG"
    assert any("<table>" in h and "add_one" in h for h in html), "the run renders as a table"
