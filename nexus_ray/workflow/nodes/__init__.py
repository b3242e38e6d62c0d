"""Built-in node types; importing this package registers them."""

from .http_request import HTTPRequestNode
from .merge import MergeNode
from .python_code import PythonCodeNode, free_variables
from .session_update import SessionUpdateNode, session_patches
from .switch import SwitchNode

__all__ = [
    "HTTPRequestNode",
    "MergeNode",
    "PythonCodeNode",
    "SessionUpdateNode",
    "SwitchNode",
    "free_variables",
    "session_patches",
]
