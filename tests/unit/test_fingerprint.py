"""Node definition digests: what changes a node's digest and what does not."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

from nexus_ray.workflow import NodePolicy, Workflow, WorkflowBuilder


def double(x: int) -> int:
    return x * 2


def double_differently(x: int) -> int:
    return x + x + 0


def shout(text: str) -> str:
    return text.upper() if text in {"a", "b", "c"} else text


def pipeline(
    first: Callable[..., Any] = double,
    code: str = "result = value + 1",
    wiring: str = "result",
    description: str = "",
    policy: NodePolicy | None = None,
) -> Workflow:
    b = WorkflowBuilder(description=description)
    b.add_node(first, "first", policy=policy) if policy else b.add_node(first, "first")
    b.add_node("PythonCodeNode", "second", {"code": code})
    return b.add_connection("first", wiring, "second", "value").build()


def test_the_same_definition_gives_the_same_digests() -> None:
    assert dict(pipeline().fingerprints) == dict(pipeline().fingerprints)
    assert set(pipeline().fingerprints) == {"first", "second"}


def test_a_node_s_code_changes_its_digest_only() -> None:
    before, after = pipeline().fingerprints, pipeline(code="result = value + 2").fingerprints
    assert before["first"] == after["first"] and before["second"] != after["second"]
    changed_function = pipeline(first=double_differently).fingerprints
    assert changed_function["first"] != before["first"] and changed_function["second"] == before["second"]


def test_rewiring_changes_the_digest_of_the_node_it_feeds() -> None:
    rewired = (
        WorkflowBuilder().add_node(double, "first").add_node("PythonCodeNode", "second", {"code": "result = value"})
    )
    rewired.add_node(double, "other").add_connection("other", "result", "second", "value")
    plain = WorkflowBuilder().add_node(double, "first").add_node("PythonCodeNode", "second", {"code": "result = value"})
    plain.add_node(double, "other").add_connection("first", "result", "second", "value")
    assert rewired.build().fingerprints["second"] != plain.build().fingerprints["second"]
    assert rewired.build().fingerprints["first"] == plain.build().fingerprints["first"]


def test_descriptions_and_policies_do_not_change_what_a_node_returns() -> None:
    plain = pipeline().fingerprints
    assert dict(pipeline(description="v2", policy=NodePolicy(retries=3)).fingerprints) == dict(plain)


def test_digests_are_the_same_in_another_process_whatever_its_hash_seed() -> None:
    # A set literal is a frozenset constant, whose order follows the string hash seed.
    script = (
        "from tests.unit.test_fingerprint import shout; from nexus_ray.workflow import WorkflowBuilder;"
        "print(WorkflowBuilder().add_node(shout, 'shout').build().fingerprints['shout'])"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script], env={"PYTHONHASHSEED": seed}, capture_output=True, text=True, check=True
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    here = WorkflowBuilder().add_node(shout, "shout").build().fingerprints["shout"]
    assert digests == {here}
