"""The workflows every RunHost should know, in one small actor.

Ray restarts a dead RunHost with its original constructor arguments, which would miss
workflows registered after start(); a host therefore loads the current set from here.
"""

from __future__ import annotations

import ray

from ..workflow import Workflow


@ray.remote(num_cpus=0, max_restarts=-1)
class WorkflowCatalog:
    """Name → workflow; the source a (re)starting RunHost loads from."""

    def __init__(self, workflows: dict[str, Workflow]) -> None:
        self.workflows = dict(workflows)

    def put(self, name: str, workflow: Workflow) -> None:
        self.workflows[name] = workflow

    def all(self) -> dict[str, Workflow]:
        return self.workflows
