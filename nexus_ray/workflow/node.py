"""The node base class, the context a node runs in, and the registry of node types."""

from __future__ import annotations

import asyncio
import contextvars
import difflib
import functools
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeVar

from ..errors import WorkflowError
from .fields import InputField

T = TypeVar("T")


@dataclass
class NodeContext:
    """What a running node may know about and use.

    Attributes:
        run_id: The run this execution belongs to.
        node_id: The node being executed.
        workflow: The registered workflow name ("" when run without a name).
        executor: Thread pool for synchronous node code, so the event loop never blocks.
    """

    run_id: str
    node_id: str
    workflow: str = ""
    executor: Executor | None = None
    attempt: int = 1

    @property
    def idempotency_key(self) -> str:
        """``run_id:node_id``: the same for every attempt of this node in this run (also
        after a crash), so a node calling an external service can deduplicate retries."""
        return f"{self.run_id}:{self.node_id}"

    def progress(self, fraction: float | None = None, message: str | None = None) -> None:
        """Report this node's progress (see ``nexus_ray.progress``)."""
        from .progress import progress

        progress(fraction, message)

    def emit(self, event_type: str, data: dict[str, Any] | None = None) -> None:
        """Add a custom event to the run's stream (see ``nexus_ray.emit``)."""
        from .progress import emit

        emit(event_type, data)

    async def run_sync(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run blocking ``fn`` in the node thread pool and await its result (with this
        node's context, so ``nexus_ray.progress`` works there too)."""
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await loop.run_in_executor(self.executor, call)


class Node:
    """Base class of every node type.

    A subclass declares its configuration parameters (``config_params``), its inputs
    (:meth:`declare_inputs`) and outputs (:meth:`output_ports`, :meth:`output_schema`),
    and implements :meth:`run`. Parameters given to ``add_node`` that name an input become
    that input's default; parameters that are neither config nor input are an error.

    Class attributes:
        type_name: Registry name (defaults to the class name).
        config_params: Names of constructor parameters that configure the node.
        accepts_any_input: True when any connection target name is allowed (MergeNode).
        skip_when: "any" skips the node when any incoming edge is dead (a Switch branch
            not taken); "all" only when all of them are (MergeNode).
        idempotent: Whether running the node twice for one run is harmless.
    """

    type_name: ClassVar[str] = ""
    config_params: ClassVar[frozenset[str]] = frozenset()
    accepts_any_input: ClassVar[bool] = False
    skip_when: ClassVar[Literal["any", "all"]] = "any"
    idempotent: ClassVar[bool] = True

    def __init__(self, node_id: str, **params: Any) -> None:
        self.node_id = node_id
        self.definition: dict[str, Any] = dict(params)  # as given to add_node (see fingerprint.py)
        self.setup(**{k: params.pop(k) for k in list(params) if k in self.config_params})
        declared = self.declare_inputs()
        unknown = sorted(set(params) - set(declared))
        if unknown and not self.accepts_any_input:
            known = sorted(set(declared) | set(self.config_params))
            raise WorkflowError(
                f"Node {node_id!r} ({self.get_type_name()}) has no parameter "
                f"{', '.join(map(repr, unknown))}; known parameters: {known}.",
                node=node_id,
                parameters=unknown,
            )
        self.static_inputs: dict[str, Any] = dict(params)
        self.inputs: Mapping[str, InputField] = {
            name: (f.with_default(params[name]) if name in params else f) for name, f in declared.items()
        }

    @classmethod
    def get_type_name(cls) -> str:
        """The name this node type is registered under."""
        return cls.type_name or cls.__name__

    def setup(self, *args: Any, **config: Any) -> None:
        """Validate and store configuration (``config_params`` given to ``add_node``, as
        keywords); raise WorkflowError naming the problem. Subclasses name their params."""

    def declare_inputs(self) -> dict[str, InputField]:
        """The node's inputs by name."""
        return {}

    def output_ports(self) -> frozenset[str] | None:
        """Top-level output keys this node may produce; None when unknown."""
        return None

    def output_schema(self) -> dict[str, Any] | None:
        """JSON Schema of the node's output dict, where known."""
        return None

    async def run(self, inputs: dict[str, Any], ctx: NodeContext) -> dict[str, Any]:
        """Execute the node; return its outputs as a dict of output name to value."""
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """A JSON-able description of the node for graph views."""
        return {
            "id": self.node_id,
            "type": self.get_type_name(),
            "inputs": sorted(self.inputs),
            "outputs": sorted(self.output_ports() or ()),
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.node_id!r})"


_REGISTRY: dict[str, type[Node]] = {}


def register_node_type(cls: type[Node], name: str | None = None) -> type[Node]:
    """Make ``cls`` addressable by name in ``WorkflowBuilder.add_node("Name", ...)``."""
    _REGISTRY[name or cls.get_type_name()] = cls
    return cls


def lookup_node_type(name: str) -> type[Node]:
    """The node class registered under ``name``; WorkflowError with close matches if none."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise WorkflowError(
            f"Unknown node type {name!r}.{hint} Known types: {sorted(_REGISTRY)}.",
            node_type=name,
            close_matches=close,
        ) from None


def registered_node_types() -> list[str]:
    """Names of every registered node type."""
    return sorted(_REGISTRY)
