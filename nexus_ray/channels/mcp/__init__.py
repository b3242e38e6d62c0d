"""The MCP channel (streamable HTTP on the ingress, and stdio)."""
