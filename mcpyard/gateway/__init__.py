"""The gateway: one MCP server per workspace in front of many upstream MCP servers.

It serves each workspace at ``/ws/<name>/mcp`` (streamable HTTP) and ``/ws/<name>/sse`` (the
legacy HTTP+SSE transport), plus ``/healthz``, ``/readyz`` and ``/metrics``. Per request it
checks the member's token against the live configuration, counts the request against the
member's and the workspace's rate limits, filters and namespaces tools (and prompts and
resources) by the compiler's rules (:mod:`mcpyard.compiler.naming`,
:mod:`mcpyard.compiler.access`), routes a call to its server under the tool's own name,
injects that server's secrets on the upstream hop, and passes results back untouched. It
reloads its manifests when they change and keeps the last good configuration of a workspace
whose new one has errors.

What it must not do: re-implement a rule the compiler owns; forward a member's token upstream
or log it; let a secret value reach a log line, an error, a response or a file; share an
upstream session between members; let one failing upstream take a workspace down.

Both protocol eras are served on ``/mcp``: the handshake era (2025-03-26 .. 2025-11-25) and
the sessionless 2026-07-28 era, chosen per request; each upstream is spoken to in the newest
era it serves. Prompts, resources, templates and completion are aggregated and namespaced like
tools, and what an upstream sends during a call (progress, log messages, sampling, elicitation
and roots requests) reaches the caller only; what it asks a member's session outside any call
reaches that session only.

Inside: transports (``_streamable``, ``_sse``, and ``_modern`` for 2026-07-28) parse HTTP into
JSON-RPC messages; ``_router`` (with ``_methods`` for everything beyond tools) is the only
module that knows both downstream sessions and upstream servers; ``_catalog`` builds the
namespaced tables; ``_relay`` and ``_streams`` carry what flows back during a call;
``_runtime`` holds the live configuration; ``upstream/`` holds the clients of upstream
servers; ``_limits``, ``_records`` (with ``_audit``) and ``_metrics`` are the small services
the router calls, fed one call record per request.
"""

from __future__ import annotations

from mcpyard.gateway._app import build_app
from mcpyard.gateway._settings import Settings

__all__ = ["Settings", "build_app"]
