"""How a node is retried and timed out (``add_node(..., policy=NodePolicy(...))``)."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..checks import is_amount, seconds, whole_number
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
            exception's class and its bases), that are retried. Others fail at once. A
            lone class or name counts as a tuple of one.
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
        whole_number(self.retries, "NodePolicy retries", error=WorkflowError)
        for name in ("backoff_s", "max_backoff_s"):
            seconds(getattr(self, name), f"NodePolicy {name}", allow_zero=True, error=WorkflowError)
        seconds(self.timeout_s, "NodePolicy timeout_s", error=WorkflowError)
        # frozen: set once here, so a lone "ConnectionError" is not read letter by letter
        object.__setattr__(self, "retry_on", _exception_kinds(self.retry_on))

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
        # 2**64 times any backoff passes any cap; from attempt 1,025 on, the power itself
        # overflowed a float, and the node failed with that OverflowError instead of its own.
        doublings = min(attempt - 1, 64)
        ceiling = min(self.max_backoff_s, self.backoff_s * 2**doublings)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def _exception_kinds(retry_on: object) -> tuple[type[BaseException] | str, ...]:
    """``retry_on`` as a tuple of exception classes and class names."""
    kinds = (retry_on,) if isinstance(retry_on, str | type) else retry_on
    if not isinstance(kinds, tuple | list | frozenset | set):
        raise WorkflowError(f"NodePolicy retry_on must be exception classes or names, got {retry_on!r}.")
    for kind in kinds:
        is_class = isinstance(kind, type) and issubclass(kind, BaseException)
        if not is_class and not (isinstance(kind, str) and kind.isidentifier()):
            raise WorkflowError(
                f"NodePolicy retry_on holds {kind!r}: give exception classes or class names such as "
                "'ConnectionError' (matched against the raised exception's class and its bases)."
            )
    return tuple(kinds)


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
        if value is not None and not is_amount(value):
            raise WorkflowError(
                f"Node {node_id!r}: {key} must be a finite non-negative number, got {value!r}.", node=node_id
            )
    custom = resources.get("resources", {})
    if not isinstance(custom, Mapping) or not all(isinstance(k, str) and is_amount(v) for k, v in custom.items()):
        raise WorkflowError(f"Node {node_id!r}: 'resources' must map names to amounts, got {custom!r}.", node=node_id)
    accelerator = resources.get("accelerator_type")
    if accelerator is not None and (not isinstance(accelerator, str) or not accelerator):
        raise WorkflowError(
            f"Node {node_id!r}: accelerator_type must be a name such as 'A100', got {accelerator!r}.", node=node_id
        )
    return dict(resources)
