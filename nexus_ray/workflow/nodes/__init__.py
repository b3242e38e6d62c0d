"""Built-in node types; importing this package registers them."""

from .http_request import HTTPRequestNode
from .merge import MergeNode
from .python_code import PythonCodeNode, free_variables
from .switch import SwitchNode

__all__ = ["HTTPRequestNode", "MergeNode", "PythonCodeNode", "SwitchNode", "free_variables"]
