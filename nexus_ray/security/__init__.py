"""Authentication, authorization, tenant isolation, rate limits and audit, the same on
every channel (REST, WebSocket, SSE, MCP, CLI)."""
