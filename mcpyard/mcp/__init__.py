"""The MCP protocol, once, below the gateway and the bridge.

What both adapters speak: protocol versions, method names and ``_meta`` keys (taken from the
SDK's ``mcp_types`` where it defines them), JSON-RPC messages and codes, server-sent events
(parse and emit), raw ASGI helpers, request-id correlation, the stdio read loop and the
supervisor of a process group.

What it must not do: know workspaces, members, resources or the compiler, map mcpyard's
errors (each adapter does that once), or import ``gateway``, ``bridge``, ``operator`` or
``cli`` (import-linter keeps the layers).
"""

from __future__ import annotations
