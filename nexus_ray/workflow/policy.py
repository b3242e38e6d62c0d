"""How a node is retried and timed out (``add_node(..., policy=NodePolicy(...))``)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import WorkflowError


class NodeTimeoutError(TimeoutError):
    """A node ran longer than its ``timeout_s``."""


class RunTimeoutError(TimeoutError):
    """A run ran longer than its workflow's ``timeout_s``."""


@dataclass(frozen=True)
class NodePolicy:
    """Retries and timeout of one node.

    Attributes:
        retries: Extra attempts after a failure (0: none).
        retry_on: Exception types, as classes or names (matched against the raised
            exception's class and its bases), that are retried. Others fail at once.
        timeout_s: Wall-time limit of one attempt; exceeding it raises NodeTimeoutError
            (retried when ``retry_on`` includes it or TimeoutError). A synchronous node's
            thread cannot be stopped: it finishes in the background, its result discarded.
        backoff_s: Delay before the first retry; doubled each time, capped at
            ``max_backoff_s``, with jitter (a random half of it).
        max_backoff_s: Longest delay between attempts.
    """

    retries: int = 0
    retry_on: tuple[type[BaseException] | str, ...] = (Exception,)
    timeout_s: float | None = None
    backoff_s: float = 0.1
    max_backoff_s: float = 10.0

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff_s < 0 or self.max_backoff_s < 0:
            raise WorkflowError(f"NodePolicy values must not be negative: {self}.")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise WorkflowError(f"NodePolicy timeout_s must be positive, got {self.timeout_s}.")

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether attempt ``attempt`` (1-based) failing with ``error`` is tried again."""
        if attempt > self.retries:
            return False
        names = {cls.__name__ for cls in type(error).__mro__}
        return any(
            (isinstance(kind, str) and kind in names) or (isinstance(kind, type) and isinstance(error, kind))
            for kind in self.retry_on
        )

    def delay_s(self, attempt: int) -> float:
        """Backoff before attempt ``attempt + 1``: exponential, capped, with equal jitter."""
        ceiling = min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


DEFAULT_POLICY = NodePolicy()


RESOURCE_KEYS = frozenset({"num_cpus", "num_gpus", "memory", "resources", "accelerator_type"})


def check_resources(node_id: str, resources: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a node's Ray resource request (the keys of ``ray.remote`` options)."""
    unknown = sorted(set(resources) - RESOURCE_KEYS)
    if unknown:
        raise WorkflowError(
            f"Node {node_id!r}: unknown resource option(s) {unknown}; use {sorted(RESOURCE_KEYS)} "
            "(custom resources go under 'resources': {'name': amount}).",
            node=node_id,
        )
    for key in ("num_cpus", "num_gpus", "memory"):
        value = resources.get(key)
        if value is not None and (not isinstance(value, (int, float)) or value < 0):
            raise WorkflowError(f"Node {node_id!r}: {key} must be a non-negative number, got {value!r}.", node=node_id)
    custom = resources.get("resources", {})
    if not isinstance(custom, Mapping) or not all(isinstance(v, (int, float)) and v >= 0 for v in custom.values()):
        raise WorkflowError(f"Node {node_id!r}: 'resources' must map names to amounts, got {custom!r}.", node=node_id)
    return dict(resources)
