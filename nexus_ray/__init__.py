"""nexus_ray: register a workflow once; serve it on REST, and run it durably on Ray.

The public API. Everything else is internal and may change. Names load on first use, so
``import nexus_ray.channels.cli`` (the ``nexus`` command) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Nexus": ".app",
    "ServerInfo": ".app",
    "AuthenticationError": ".errors",
    "ConfigurationError": ".errors",
    "ConflictError": ".errors",
    "ExitCalledError": ".exits",
    "PermissionDeniedError": ".errors",
    "RateLimitedError": ".errors",
    "ScalingPolicy": ".scaling",
    "InputValidationError": ".errors",
    "InvalidRequestError": ".errors",
    "NexusError": ".errors",
    "NotFoundError": ".errors",
    "PayloadTooLargeError": ".errors",
    "ResourcesUnavailableError": ".errors",
    "RuntimeUnavailableError": ".errors",
    "StoreUnavailableError": ".errors",
    "WorkflowError": ".errors",
    "WorkflowNotFoundError": ".errors",
    "Settings": ".settings",
    "emit": ".workflow.progress",
    "progress": ".workflow.progress",
    "HTTPRequestNode": ".workflow",
    "MergeNode": ".workflow",
    "Node": ".workflow",
    "NodeContext": ".workflow",
    "NodePolicy": ".workflow",
    "PythonCodeNode": ".workflow",
    "RunResult": ".workflow",
    "RunStatus": ".workflow",
    "SwitchNode": ".workflow",
    "Workflow": ".workflow",
    "WorkflowBuilder": ".workflow",
    "node": ".workflow",
}

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ConflictError",
    "ExitCalledError",
    "HTTPRequestNode",
    "InputValidationError",
    "InvalidRequestError",
    "MergeNode",
    "Nexus",
    "NexusError",
    "Node",
    "NodeContext",
    "NodePolicy",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PythonCodeNode",
    "RateLimitedError",
    "ResourcesUnavailableError",
    "RunResult",
    "RunStatus",
    "RuntimeUnavailableError",
    "ScalingPolicy",
    "ServerInfo",
    "Settings",
    "StoreUnavailableError",
    "SwitchNode",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowError",
    "WorkflowNotFoundError",
    "__version__",
    "emit",
    "node",
    "progress",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nexus_ray' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from .app import Nexus, ServerInfo
    from .errors import (
        AuthenticationError,
        ConfigurationError,
        ConflictError,
        InputValidationError,
        InvalidRequestError,
        NexusError,
        NotFoundError,
        PayloadTooLargeError,
        PermissionDeniedError,
        RateLimitedError,
        ResourcesUnavailableError,
        RuntimeUnavailableError,
        StoreUnavailableError,
        WorkflowError,
        WorkflowNotFoundError,
    )
    from .exits import ExitCalledError
    from .scaling import ScalingPolicy
    from .settings import Settings
    from .workflow import (
        HTTPRequestNode,
        MergeNode,
        Node,
        NodeContext,
        NodePolicy,
        PythonCodeNode,
        RunResult,
        RunStatus,
        SwitchNode,
        Workflow,
        WorkflowBuilder,
        node,
    )
    from .workflow.progress import emit, progress
