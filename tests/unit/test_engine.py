"""Engine order, concurrency, skip propagation, failures and hooks."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from nexus_ray.workflow import EngineHooks, WorkflowBuilder, WorkflowEngine

from .helpers import run


class Recorder(EngineHooks):
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    async def node_started(self, node_id: str) -> None:
        self.events.append(("started", node_id))

    async def node_completed(self, node_id: str, outputs: dict[str, Any], duration_ms: float) -> None:
        self.events.append(("completed", node_id))

    async def node_failed(self, node_id: str, error: dict[str, Any]) -> None:
        self.events.append(("failed", node_id))

    async def node_skipped(self, node_id: str, reason: str) -> None:
        self.events.append(("skipped", node_id))


def chain() -> Any:
    b = WorkflowBuilder()
    b.add_node("PythonCodeNode", "a", {"code": "result = x"})
    b.add_node("PythonCodeNode", "b", {"code": "result = v + 1"})
    b.add_node("PythonCodeNode", "c", {"code": "result = v + 1"})
    b.add_connection("a", "result", "b", "v").add_connection("b", "result", "c", "v")
    return b.build()


def test_nodes_run_in_dependency_order_with_hooks() -> None:
    hooks = Recorder()
    outcome = run(chain(), {"x": 1}, hooks=hooks)
    assert outcome.outputs["c"] == {"result": 3}
    assert hooks.events == [
        ("started", "a"),
        ("completed", "a"),
        ("started", "b"),
        ("completed", "b"),
        ("started", "c"),
        ("completed", "c"),
    ]


def test_independent_sync_nodes_run_concurrently() -> None:
    b = WorkflowBuilder()
    b.add_node("PythonCodeNode", "s1", {"code": "import time\ntime.sleep(0.2)\nresult = 1"})
    b.add_node("PythonCodeNode", "s2", {"code": "import time\ntime.sleep(0.2)\nresult = 2"})
    b.add_node("PythonCodeNode", "sum", {"code": "result = p + q"})
    b.add_connection("s1", "result", "sum", "p").add_connection("s2", "result", "sum", "q")
    started = time.perf_counter()
    outcome = run(b.build(), {})
    elapsed = time.perf_counter() - started
    assert outcome.outputs["sum"] == {"result": 3}
    assert elapsed < 0.33, f"two 0.2 s nodes took {elapsed:.3f} s together"


def test_independent_async_nodes_run_concurrently() -> None:
    async def nap(tag: str) -> str:
        await asyncio.sleep(0.2)
        return tag

    b = WorkflowBuilder().add_node(nap, "n1", tag="a").add_node(nap, "n2", tag="b")
    started = time.perf_counter()
    outcome = run(b.build(), {})
    assert time.perf_counter() - started < 0.33
    assert outcome.outputs == {"n1": {"result": "a"}, "n2": {"result": "b"}}


def switch_workflow(merge: bool) -> Any:
    b = WorkflowBuilder()
    b.add_node("SwitchNode", "route", {"condition_field": "amount", "operator": ">=", "value": 100})
    b.add_node("PythonCodeNode", "big", {"code": "result = 'big'" + " if order else None"})
    b.add_node("PythonCodeNode", "small", {"code": "result = 'small' if order else None"})
    b.add_node("PythonCodeNode", "after_small", {"code": "result = v + '!'"})
    b.add_connection("route", "true_output", "big", "order")
    b.add_connection("route", "false_output", "small", "order")
    b.add_connection("small", "result", "after_small", "v")
    if merge:
        b.add_node("MergeNode", "join")
        b.add_connection("big", "result", "join", "a")
        b.add_connection("after_small", "result", "join", "b")
    return b.build()


def test_switch_skips_untaken_branch_transitively() -> None:
    hooks = Recorder()
    outcome = run(switch_workflow(merge=False), {"input_data": {"amount": 150}}, hooks=hooks)
    assert outcome.status == "completed"
    assert outcome.outputs["big"] == {"result": "big"}
    assert outcome.nodes["small"].status == "skipped"
    assert outcome.nodes["after_small"].status == "skipped"
    assert "route" in (outcome.nodes["small"].reason or "")
    assert ("skipped", "after_small") in hooks.events
    assert "small" not in outcome.outputs


def test_merge_joins_whichever_branch_ran() -> None:
    low = run(switch_workflow(merge=True), {"input_data": {"amount": 5}})
    high = run(switch_workflow(merge=True), {"input_data": {"amount": 500}})
    assert low.outputs["join"] == {"merged_data": "small!"}
    assert high.outputs["join"] == {"merged_data": "big"}
    assert low.nodes["big"].status == "skipped" and low.nodes["join"].status == "completed"


def test_switch_cases_mode() -> None:
    b = WorkflowBuilder()
    b.add_node("SwitchNode", "s", {"condition_field": "kind", "cases": ["a", "b"]})
    b.add_node("PythonCodeNode", "on_b", {"code": "result = v"})
    b.add_node("PythonCodeNode", "other", {"code": "result = v"})
    b.add_connection("s", "case_b", "on_b", "v").add_connection("s", "default", "other", "v")
    out = run(b.build(), {"input_data": {"kind": "b"}})
    assert out.outputs["on_b"] == {"result": {"kind": "b"}} and out.nodes["other"].status == "skipped"
    out = run(b.build(), {"input_data": {"kind": "z"}})
    assert out.nodes["on_b"].status == "skipped" and out.outputs["other"] == {"result": {"kind": "z"}}


def test_merge_types() -> None:
    for kind, expected in [("list", [[1], [2]]), ("concat", [1, 2]), ("dict", {"a": [1], "b": [2]})]:
        b = WorkflowBuilder()
        b.add_node("PythonCodeNode", "p", {"code": "result = [1]"}).add_node(
            "PythonCodeNode", "q", {"code": "result = [2]"}
        )
        b.add_node("MergeNode", "m", {"merge_type": kind})
        b.add_connection("p", "result", "m", "a").add_connection("q", "result", "m", "b")
        assert run(b.build(), {}).outputs["m"] == {"merged_data": expected}


def test_failing_node_fails_run_naming_node_type_and_message() -> None:
    b = WorkflowBuilder()
    b.add_node("PythonCodeNode", "ok", {"code": "result = 1"})
    b.add_node("PythonCodeNode", "boom", {"code": "raise ValueError('bad value ' + str(v))"})
    b.add_node("PythonCodeNode", "never", {"code": "result = w"})
    b.add_connection("ok", "result", "boom", "v").add_connection("boom", "result", "never", "w")
    hooks = Recorder()
    outcome = run(b.build(), {}, hooks=hooks)
    assert outcome.status == "failed"
    assert outcome.error == {"node": "boom", "type": "ValueError", "message": "bad value 1"}
    assert outcome.nodes["boom"].status == "failed"
    assert outcome.nodes["never"].status == "pending"
    assert outcome.outputs == {"ok": {"result": 1}}
    assert ("failed", "boom") in hooks.events


def test_failure_cancels_in_flight_nodes() -> None:
    cancelled = asyncio.Event()

    async def slow() -> int:
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 1

    async def fail() -> int:
        await asyncio.sleep(0.05)
        raise RuntimeError("nope")

    wf = WorkflowBuilder().add_node(slow, "slow").add_node(fail, "fail").build()

    async def go() -> Any:
        out = await WorkflowEngine().execute(wf, wf.resolve_inputs({}), run_id="r")
        return out, cancelled.is_set()

    started = time.perf_counter()
    outcome, was_cancelled = asyncio.run(go())
    assert time.perf_counter() - started < 1
    assert outcome.status == "failed" and outcome.error["node"] == "fail"
    assert outcome.nodes["slow"].status == "cancelled" and was_cancelled


def test_missing_key_in_dotted_path_fails_target() -> None:
    b = WorkflowBuilder()
    b.add_node("PythonCodeNode", "a", {"code": "result = {'value': 1}"})
    b.add_node("PythonCodeNode", "b", {"code": "result = v"})
    b.add_connection("a", "result.valeu", "b", "v")
    outcome = run(b.build(), {})
    assert outcome.status == "failed"
    assert outcome.error["node"] == "b" and "'result.valeu' not found" in outcome.error["message"]


def test_code_without_result_fails_clearly() -> None:
    outcome = run(WorkflowBuilder().add_node("PythonCodeNode", "n", {"code": "y = 1"}).build(), {})
    assert outcome.error == {
        "node": "n",
        "type": "PythonCodeError",
        "message": "the code of node 'n' did not set 'result'",
    }


def test_typed_node_rejects_mistyped_connected_value() -> None:
    def need_int(n: int) -> int:
        return n

    b = WorkflowBuilder()
    b.add_node("PythonCodeNode", "src", {"code": "result = 'not a number'"})
    b.add_node(need_int, "dst")
    b.add_connection("src", "result", "dst", "n")
    outcome = run(b.build(), {})
    assert outcome.error["node"] == "dst" and outcome.error["type"] == "NodeInputError"


class Opaque:
    """A value no JSON serializer knows."""


def test_outputs_that_cannot_be_written_as_json_fail_their_node_by_name() -> None:
    import datetime

    def stamp() -> dict[str, Any]:
        return {"when": datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC), "tags": {"a"}}

    def opaque(when: Any) -> dict[str, Any]:
        return {"model": Opaque()}

    b = WorkflowBuilder().add_node(stamp, "stamp").add_node(opaque, "opaque")
    outcome = run(b.add_connection("stamp", "result", "opaque", "when").build(), {})
    assert outcome.status.value == "failed" and outcome.nodes["stamp"].status.value == "completed"
    assert outcome.error is not None and outcome.error["node"] == "opaque" and outcome.error["type"] == "TypeError"
    assert "cannot be written as JSON (Unable to serialize unknown type: <class" in outcome.error["message"]
    assert "Opaque" in outcome.error["message"]


def test_a_string_with_a_lone_surrogate_fails_its_node_by_name() -> None:
    """JSON text cannot be UTF-8 with one in it: the store's write would fail after the
    node, and a durable run be resumed, its node run again, until a 503."""
    outcome = run(WorkflowBuilder().add_node("PythonCodeNode", "s", {"code": "result = chr(0xD800)"}).build(), {})
    assert outcome.status.value == "failed" and outcome.error is not None and outcome.error["type"] == "TypeError"
    assert (
        "cannot be written as JSON" in outcome.error["message"] and "surrogates not allowed" in outcome.error["message"]
    )


def test_outputs_go_on_as_json_holds_them_so_a_resumed_run_sees_the_same_values() -> None:
    """A durable run resumed after a crash reads a node's outputs back from the store, as
    JSON: the live run must pass on those values, not the Python objects they came from."""
    import datetime
    import uuid

    def make() -> dict[str, Any]:
        return {
            "when": datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC),
            "pair": (1, 2),
            "tags": {"a"},
            "id": uuid.UUID(int=1),
            "by_n": {1: "one"},
        }

    def kinds(value: dict[str, Any]) -> dict[str, str]:
        return {k: type(v).__name__ for k, v in value.items()}

    b = WorkflowBuilder().add_node(make, "make").add_node(kinds, "kinds")
    outcome = run(b.add_connection("make", "result", "kinds", "value").build(), {})
    made = outcome.outputs["make"]["result"]
    assert made == {
        "when": "2026-01-02T00:00:00Z",
        "pair": [1, 2],
        "tags": ["a"],
        "id": "00000000-0000-0000-0000-000000000001",
        "by_n": {"1": "one"},
    }
    assert outcome.outputs["kinds"]["result"] == {
        "when": "str",
        "pair": "list",
        "tags": "list",
        "id": "str",
        "by_n": "dict",
    }


async def test_a_hook_that_fails_stops_the_nodes_still_running() -> None:
    """A durable run's checkpoint write failing (the store) ends the run's execution:
    its other nodes must not run on unseen, writing events for a run that is being resumed."""
    finished: list[str] = []

    async def slow() -> int:
        await asyncio.sleep(0.5)
        finished.append("slow")
        return 1

    class FailingCheckpoint(Recorder):
        async def node_completed(self, node_id: str, outputs: dict[str, Any], duration_ms: float) -> None:
            raise RuntimeError("checkpoint write failed")

    b = WorkflowBuilder().add_node("PythonCodeNode", "fast", {"code": "result = 1"}).add_node(slow, "slow")
    wf = b.build()
    try:
        await WorkflowEngine().execute(wf, wf.resolve_inputs({}), run_id="r", hooks=FailingCheckpoint())
    except RuntimeError as exc:
        assert str(exc) == "checkpoint write failed"
    else:
        raise AssertionError("the hook's failure was swallowed")
    await asyncio.sleep(0.6)
    assert finished == []
