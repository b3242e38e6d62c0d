"""Jupyter views: a workflow's graph as SVG, a run as an HTML table."""

from __future__ import annotations

from nexus_ray.workflow import NodeRecord, NodeStatus, RunResult, RunStatus, WorkflowBuilder
from nexus_ray.workflow.render import columns

from .helpers import double_plus_one


def test_graph_svg_has_a_box_per_node_and_a_labelled_arrow_per_connection() -> None:
    svg = double_plus_one()._repr_html_()
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count("<rect") == 2 and svg.count("<line") == 1
    assert ">double<" in svg and ">add_one<" in svg and "PythonCodeNode" in svg and "result.value → value" in svg


def test_columns_follow_the_longest_path() -> None:
    edges = [("a", "b"), ("b", "c"), ("a", "c"), ("a", "d")]
    assert columns(["a", "b", "d", "c"], edges) == {"a": 0, "b": 1, "d": 1, "c": 2}


def test_names_are_escaped() -> None:
    wf = WorkflowBuilder().add_node("PythonCodeNode", "x<y", {"code": "result = 1"}).build()
    assert "x&lt;y" in wf._repr_html_() and "x<y" not in wf._repr_html_()


def test_run_table_lists_each_node() -> None:
    result = RunResult(
        run_id="r1",
        workflow="w",
        status=RunStatus.FAILED,
        outputs={"a": {"value": 1}},
        duration_ms=3.5,
        error={"node": "b", "type": "ValueError", "message": "bad"},
        nodes={
            "a": NodeRecord(NodeStatus.COMPLETED, 0.0, 1.25),
            "b": NodeRecord(NodeStatus.FAILED, 0.0, 2.0, {"type": "ValueError", "message": "bad"}),
        },
    )
    table = result._repr_html_()
    assert "failed" in table and "3.5 ms" in table and table.count("<tr>") == 3
    assert "{&quot;value&quot;: 1}" in table and "ValueError" in table and "1.2" in table


def test_a_node_waiting_for_resources_says_what_for_and_how_long() -> None:
    from nexus_ray.channels.cli_output import RunProgress

    progress = RunProgress()
    progress.update({"type": "node.waiting", "data": {"node": "train", "resources": {"GPU": 1.0}, "wait_s": 600.0}})
    assert progress.nodes["train"] == {"status": "waiting", "detail": "for {'GPU': 1.0} (up to 600 s)"}
