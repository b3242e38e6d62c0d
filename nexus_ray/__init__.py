"""nexus_ray: register a workflow once; serve it on REST, and run it durably on Ray.

The public API. Everything else is internal and may change.
"""

__version__ = "0.1.0"

from .app import Nexus, ServerInfo
from .errors import (
    ConflictError,
    InputValidationError,
    InvalidRequestError,
    NexusError,
    NotFoundError,
    PayloadTooLargeError,
    RuntimeUnavailableError,
    WorkflowError,
    WorkflowNotFoundError,
)
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

__all__ = [
    "ConflictError",
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
    "PythonCodeNode",
    "RunResult",
    "RunStatus",
    "RuntimeUnavailableError",
    "ServerInfo",
    "Settings",
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
