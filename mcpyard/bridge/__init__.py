"""``mcpyard bridge``: one stdio MCP server served over streamable HTTP (both protocol eras).

In a cluster every stdio server runs in a runner container as
``mcpyard bridge --port 8080 -- CMD ARGS...``, and the gateway talks to it as a streamable-HTTP
upstream at ``/mcp``. The bridge supervises the one child process (own process group, restart
with backoff, the group killed on exit, stderr passed through as the container log), speaks
MCP to it over stdio, and forwards everything in both directions; it is transparent: clients
see the child's own capabilities, serverInfo and results, unknown fields untouched.

One child, shared: a stdio server has exactly one MCP session, so every HTTP session of the
bridge shares it and whatever state the server keeps (log level, resource subscriptions, a
working directory it was told to use, a login). The gateway keeps one upstream session per
member, but behind a bridge those sessions meet in the same child: isolation between members
is what the server itself provides, no more. A restart of the child loses that state.

What it must not do: no authentication, routing, renaming or filtering (that is the gateway's
job; the bridge listens inside the pod network), no knowledge of resources or the compiler, and
no environment filtering: the container's environment is the server's.
"""

from __future__ import annotations

from mcpyard.bridge._http import BridgeApp
from mcpyard.bridge._run import Settings, run, serve

__all__ = ["BridgeApp", "Settings", "run", "serve"]
