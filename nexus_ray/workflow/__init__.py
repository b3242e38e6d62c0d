"""The workflow model: builder, validated DAG, nodes, schemas and the engine. Never imports Ray."""

from .builder import WorkflowBuilder
from .engine import EngineHooks, RunOutcome, WorkflowEngine
from .fields import MISSING, InputField
from .graph import Workflow
from .graph_types import Connection
from .node import Node, NodeContext, lookup_node_type, register_node_type, registered_node_types
from .nodes import HTTPRequestNode, MergeNode, PythonCodeNode, SessionUpdateNode, SwitchNode, free_variables
from .policy import NodePolicy, NodeTimeoutError, RunTimeoutError
from .result import NodeRecord, NodeStatus, RunResult, RunStatus
from .typed import FunctionNode, function_node_class, node

__all__ = [
    "MISSING",
    "Connection",
    "EngineHooks",
    "FunctionNode",
    "HTTPRequestNode",
    "InputField",
    "MergeNode",
    "Node",
    "NodeContext",
    "NodePolicy",
    "NodeRecord",
    "NodeStatus",
    "NodeTimeoutError",
    "PythonCodeNode",
    "RunOutcome",
    "RunResult",
    "RunStatus",
    "RunTimeoutError",
    "SessionUpdateNode",
    "SwitchNode",
    "Workflow",
    "WorkflowBuilder",
    "WorkflowEngine",
    "free_variables",
    "function_node_class",
    "lookup_node_type",
    "node",
    "register_node_type",
    "registered_node_types",
]
