"""Clients of upstream MCP servers: one :class:`Upstream` per server, built by :func:`create`.

- streamable HTTP (``_http``): aiohttp, one pooled connection set per upstream, one MCP session
  per owner (one for all owners when the server is stateless), transparent re-initialization
  of expired sessions, the gateway session's GET stream for notifications;
- legacy HTTP+SSE (``_sse``): one event stream per owner, POSTs to its endpoint;
- stdio (``_stdio``): one supervised process per server, shared by every owner (a stdio
  process has one session);
- a hosted streamable-HTTP server with a command: the process runs under the same supervisor
  (``_process``) and is reached with the HTTP client.

Every request injects the server's secrets just in time (``bearer`` and ``header`` as HTTP
headers, ``env`` into a spawned process's environment). What this package must not do: keep a
revealed secret beyond building one request or spawning one process; put a secret, a token or
a URL's query string into an error, a log line or ``last_error``; share a stateful upstream
session between owners; leave a child process behind after ``close()``.

Measured on the hot path (``tests/gateway/upstream/bench_upstream.py``: echo server
``--stateless --json`` on loopback, 2 cores, CPU of the client process per ``tools/call``): the
streamable HTTP client costs what a bare aiohttp POST loop costs, within the noise of about
15 µs (c=1: ~165-185 µs both; c=64: ~130-140 µs both). A new owner's first call on a stateless
server costs ~140 µs CPU with the shared initialization vs ~410 µs with a handshake per owner.
"""

from __future__ import annotations

from pathlib import Path

from mcpyard.compiler.config import ServerConfig
from mcpyard.errors import UpstreamRPCError
from mcpyard.gateway.upstream import _http, _sse, _stdio
from mcpyard.gateway.upstream._base import (
    NotificationHandler,
    Owner,
    SecretSource,
    Upstream,
)

__all__ = ["Owner", "SecretSource", "Upstream", "UpstreamRPCError", "create"]


def create(
    server: ServerConfig,
    *,
    secrets: SecretSource,
    on_notification: NotificationHandler,
    workdir: Path | None = None,
) -> Upstream:
    """The client for ``server``'s transport; it does nothing until ``start()``.

    Raises ValueError when the configuration lacks what its transport needs (the compiler
    rules that out for valid resources).
    """
    if server.protocol_era == "modern" and server.transport != "streamable-http":
        raise ValueError(f"{server.slug}: protocolEra modern (2026-07-28) is spoken over "
                         f"streamable-http only, not {server.transport}")
    if server.transport == "stdio":
        if not server.command:
            raise ValueError(f"{server.slug}: a stdio server needs a command")
        return _stdio.StdioUpstream(
            server, secrets=secrets, on_notification=on_notification, workdir=workdir
        )
    if server.transport == "sse":
        return _sse.LegacySSEUpstream(server, secrets=secrets, on_notification=on_notification)
    # A command with a url: a hosted server the gateway spawns and reaches over loopback.
    return _http.StreamableHTTPUpstream(
        server, secrets=secrets, on_notification=on_notification, workdir=workdir
    )
