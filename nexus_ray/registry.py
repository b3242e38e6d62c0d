"""Named, registered workflows: the catalog every channel serves."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ConflictError, WorkflowError, WorkflowNotFoundError
from .security.rate_limit import RateSpec
from .workflow import Workflow, WorkflowBuilder

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


@dataclass(frozen=True)
class RegisteredWorkflow:
    """A workflow under its public name, with the schemas every channel shows."""

    name: str
    workflow: Workflow
    description: str = ""
    input_schema: dict[str, Any] = field(default_factory=dict)
    output_schema: dict[str, Any] = field(default_factory=dict)
    rate_limit: RateSpec | None = None  # per principal, on top of NEXUS_RATE_LIMIT

    def summary(self) -> dict[str, Any]:
        """Name, description and schemas (the ``GET /workflows`` entry)."""
        return {
            "name": self.name,
            "description": self.description,
            "input_schema": self.input_schema,
            "output_schema": self.output_schema,
        }

    def detail(self) -> dict[str, Any]:
        """The summary plus the node graph (``GET /workflows/{name}``)."""
        return {**self.summary(), "graph": self.workflow.describe()}


def check_name(name: Any) -> str:
    """A valid workflow name (letters, digits, ``-``, ``_``, ``.``), else WorkflowError."""
    if not isinstance(name, str) or not _NAME.match(name) or name in (".", ".."):
        raise WorkflowError(
            f"Invalid workflow name {name!r}: use 1-128 letters, digits, '-', '_' or '.'.",
            workflow=name,
        )
    return name


def make_registered(
    name: str, workflow: Workflow | WorkflowBuilder, description: str | None, rate_limit: str | None = None
) -> RegisteredWorkflow:
    """Validate the name, build a builder, and compute the schemas once."""
    check_name(name)
    if isinstance(workflow, WorkflowBuilder):
        workflow = workflow.build()
    if not isinstance(workflow, Workflow):
        raise WorkflowError(
            f"register({name!r}, ...) needs a Workflow or WorkflowBuilder, got {type(workflow).__name__}.",
            workflow=name,
        )
    text = description if description is not None else workflow.description
    return RegisteredWorkflow(
        name=name,
        workflow=workflow,
        description=text,
        input_schema=workflow.input_schema(title=f"{name} inputs"),
        output_schema=workflow.output_schema(title=f"{name} outputs"),
        rate_limit=RateSpec.parse(rate_limit) if rate_limit is not None else None,
    )


class Catalog:
    """Name → RegisteredWorkflow, refusing duplicates."""

    def __init__(self) -> None:
        self._items: dict[str, RegisteredWorkflow] = {}

    def add(self, item: RegisteredWorkflow) -> None:
        """Add ``item``; ConflictError when the name is taken."""
        if item.name in self._items:
            raise ConflictError(
                f"A workflow named {item.name!r} is already registered; choose another name.",
                workflow=item.name,
            )
        self._items[item.name] = item

    def remove(self, name: str) -> RegisteredWorkflow:
        """Remove and return ``name`` (WorkflowNotFoundError with close matches if unknown)."""
        item = self.get(name)
        del self._items[name]
        return item

    def get(self, name: str) -> RegisteredWorkflow:
        """The workflow registered as ``name``, else WorkflowNotFoundError with close matches."""
        try:
            return self._items[name]
        except KeyError:
            raise not_found(name, list(self._items)) from None

    def items(self) -> dict[str, RegisteredWorkflow]:
        """A copy of the mapping."""
        return dict(self._items)


def not_found(name: str, known: list[str]) -> WorkflowNotFoundError:
    """WorkflowNotFoundError naming close matches."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else " GET /workflows lists them."
    return WorkflowNotFoundError(f"No workflow named {name!r}.{hint}", workflow=name, close_matches=close)
