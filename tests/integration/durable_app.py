"""Workflows whose nodes log each execution to a file: first -> slow -> last, and a
session run that counts a visit slowly and writes it back (tally -> remember)."""

from __future__ import annotations

import asyncio

from nexus_ray import Nexus, WorkflowBuilder


def log_step(path: str, step: str) -> None:
    with open(path, "a") as out:
        out.write(step + "\n")


def first(path: str) -> str:
    log_step(path, "first")
    return "a"


async def slow(path: str, prev: str, seconds: float = 3.0) -> str:
    log_step(path, "slow")
    await asyncio.sleep(seconds)
    return prev + "b"


def last(path: str, prev: str) -> str:
    log_step(path, "last")
    return prev + "c"


async def tally(path: str, visits: int, seconds: float = 3.0) -> dict[str, int]:
    log_step(path, "tally")
    await asyncio.sleep(seconds)
    return {"visits": visits + 1}


def kill_host(path: str) -> str:
    """Ends the process it runs in at once, as a crash in native code or the OOM killer
    would: a poison node."""
    import os

    log_step(path, "kill_host")
    os._exit(1)


def three_steps() -> WorkflowBuilder:
    b = WorkflowBuilder(description="first -> slow -> last, each logging to `path`")
    b.add_node(first, "first").add_node(slow, "slow").add_node(last, "last")
    b.add_connection("first", "result", "slow", "prev").add_connection("slow", "result", "last", "prev")
    return b


def slow_visit() -> WorkflowBuilder:
    b = WorkflowBuilder(description="counts a visit to the run's session, slowly")
    b.add_node(tally, "tally").add_node("SessionUpdateNode", "remember")
    b.add_connection("tally", "result", "remember", "patch")
    return b


app = Nexus()
app.register("three_steps", three_steps())
app.register("slow_visit", slow_visit())
