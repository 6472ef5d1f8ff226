"""Downstream: how MCP clients reach the gateway.

The transports (streamable HTTP for both protocol eras, the legacy HTTP+SSE transport), the
downstream sessions, token authentication and the Origin/Host check. They parse and encode;
what a request means is the router's (:mod:`mcpyard.gateway._router`). Nothing here talks
to an upstream server.
"""
