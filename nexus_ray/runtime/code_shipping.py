"""Ship the app author's code to Ray workers by value.

An app file loaded by ``nexus serve app.py`` (or a test module) is not importable in a Ray
worker process, so functions and node classes defined there are pickled by value.
Installed packages (site-packages) and nexus_ray itself stay pickled by reference.
"""

from __future__ import annotations

import contextlib
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray import cloudpickle

from ..errors import WorkflowError
from ..workflow import Workflow
from .errors import UNPICKLABLE

_INSTALLED = {Path(p).resolve() for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}}


def ship_by_value(workflow: Workflow) -> None:
    """Register the modules that define ``workflow``'s nodes for pickling by value."""
    for node in workflow.nodes.values():
        for obj in (type(node), getattr(node, "function", None)):
            if obj is not None:
                ship_module_of(obj)


def ship_module_of(obj: Any) -> None:
    """Pickle ``obj``'s module by value when it is the app's own code."""
    name = getattr(obj, "__module__", None)
    if not name or name == "__main__" or name.split(".")[0] in ("nexus_ray", "builtins"):
        return
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    if module is None or path is None or _is_installed(Path(path)):
        return
    with contextlib.suppress(ValueError):  # already registered
        cloudpickle.register_pickle_by_value(module)


def _is_installed(path: Path) -> bool:
    resolved = path.resolve()
    return any(root in resolved.parents for root in _INSTALLED)


def unshippable(exc: BaseException, workflows: Mapping[str, Workflow]) -> WorkflowError | None:
    """Ray's error for workflows it could not pickle to send them to the hosts, as a
    WorkflowError naming the first node it cannot pickle and why (found by pickling each
    node again); None for any other error. Before, it was Ray's page-long TypeError."""
    if not (isinstance(exc, TypeError) and str(exc).startswith(UNPICKLABLE)):
        return None
    for name, workflow in workflows.items():
        for node_id, node in workflow.nodes.items():
            try:
                cloudpickle.dumps(node)
            except Exception as reason:  # a closure can fail to pickle in many ways
                return WorkflowError(
                    f"Workflow {name!r} cannot be sent to its hosts: Ray cannot pickle node {node_id!r} "
                    f"({reason}). Create what it holds (a lock, a connection, a client) inside the node.",
                    workflow=name,
                    node=node_id,
                )
    return WorkflowError(f"The workflows cannot be sent to their hosts: {str(exc).splitlines()[0]}")
