"""The router: the one place that knows both sides, downstream sessions and upstream servers.

It works on parsed JSON-RPC messages (dicts) and returns messages; transports parse and encode.
A request walks down once: member (already authenticated) -> method -> tool table -> access
check -> upstream (under the tool's own name) -> result, untouched.
"""

from __future__ import annotations

import logging
from typing import Any

from mcpyard import __version__, errors
from mcpyard.compiler import access, naming
from mcpyard.gateway import _jsonrpc as rpc
from mcpyard.gateway import _tools
from mcpyard.gateway._auth import Member
from mcpyard.gateway._runtime import Live, Runtime
from mcpyard.gateway._sessions import Session
from mcpyard.gateway.upstream._base import UpstreamRPCError

log = logging.getLogger("mcpyard.gateway")

STREAMABLE_VERSIONS = ("2025-03-26", "2025-06-18", "2025-11-25")
"""Handshake-era versions served on /mcp, oldest first."""
SSE_VERSIONS = ("2024-11-05", *STREAMABLE_VERSIONS)
"""Versions served on the legacy HTTP+SSE transport."""
LATEST = STREAMABLE_VERSIONS[-1]
DEFAULT_HEADER_VERSION = "2025-03-26"
"""What a request without MCP-Protocol-Version speaks (the spec's backwards-compatible rule)."""
BATCH_VERSIONS = frozenset({"2025-03-26"})
"""Only 2025-03-26 has JSON-RPC batches; later versions removed them."""

CAPABILITIES = {"tools": {"listChanged": True}}


def negotiate(requested: Any, supported: tuple[str, ...]) -> str:
    """The client's version when supported, else the latest one (the client decides)."""
    return requested if isinstance(requested, str) and requested in supported else supported[-1]


def initialize_result(live: Live, version: str) -> dict[str, Any]:
    return {
        "protocolVersion": version,
        "capabilities": CAPABILITIES,
        "serverInfo": {"name": "mcpyard", "title": live.config.display_name,
                       "version": __version__},
    }


class Router:
    def __init__(self, runtime: Runtime, *, page_size: int) -> None:
        self.runtime = runtime
        self.page_size = page_size

    async def request(self, live: Live, member: Member, session: Session,
                      msg: dict[str, Any]) -> dict[str, Any]:
        """Answer one JSON-RPC request of an initialized session."""
        method, id_ = msg["method"], msg["id"]
        if method == "tools/call":
            return await self._call(live, member, session, id_, msg.get("params"))
        if method == "tools/list":
            return self._list(live, member, id_, msg.get("params"))
        if method == "ping":
            return rpc.result(id_, {})
        if method == "initialize":
            return rpc.error(id_, rpc.INVALID_REQUEST, "the session is already initialized")
        return rpc.error(id_, rpc.METHOD_NOT_FOUND, f"Method not found: {method}")

    async def notification(self, live: Live, member: Member, session: Session,
                           msg: dict[str, Any]) -> None:
        # notifications/initialized, notifications/cancelled, notifications/roots/list_changed:
        # nothing to do until server-to-client requests and cancellations are relayed.
        return None

    def _list(self, live: Live, member: Member, id_: rpc.Id, params: Any) -> dict[str, Any]:
        cursor = params.get("cursor") if isinstance(params, dict) else None
        try:
            page = _tools.page(live.view(member.config), cursor, self.page_size)
        except _tools.InvalidCursor:
            return rpc.error(id_, rpc.INVALID_PARAMS, "Invalid params: unknown cursor")
        return rpc.result(id_, page)

    async def _call(self, live: Live, member: Member, session: Session, id_: rpc.Id,
                    params: Any) -> dict[str, Any]:
        if not isinstance(params, dict) or not isinstance(params.get("name"), str):
            return rpc.error(id_, rpc.INVALID_PARAMS, "Invalid params: tools/call needs a name")
        name: str = params["name"]
        entry = live.table.by_name.get(name) if name in live.view(member.config).allowed \
            else None
        if entry is None:
            return self._unknown(live, member, id_, name)
        handle = live.handles[entry.slug]
        forwarded = dict(params)
        forwarded["name"] = entry.original
        session.used.add(handle)
        try:
            result = await handle.request("tools/call", forwarded, session.owner,
                                          handle.server.timeout_seconds)
        except UpstreamRPCError as exc:
            return rpc.error(id_, exc.code, exc.rpc_message, exc.data)
        except (errors.MCPyardError, TimeoutError, OSError) as exc:
            upstream = handle.upstream
            if upstream is not None and not upstream.healthy and handle.up:
                self.runtime.mark_down(handle, upstream.last_error or str(exc))
            log.warning("member %s: %s failed: %s", member.key, name, exc)
            if isinstance(exc, errors.MCPyardError):
                return rpc.error_from(id_, exc, slug=entry.slug)
            return rpc.error_from(id_, errors.UpstreamError(str(exc) or type(exc).__name__),
                                  slug=entry.slug)
        if not handle.up:
            self.runtime.discover_soon(handle)  # it answered: bring its tools back
        return rpc.result(id_, result)

    def _unknown(self, live: Live, member: Member, id_: rpc.Id, name: str) -> dict[str, Any]:
        # A server that never listed its tools (down since start) cannot route by table; when
        # the name would be its tool and the member may use it, say that the server is down
        # rather than that the tool does not exist. The split only finds the server.
        parts = naming.split(name)
        if parts is not None:
            handle = live.handles.get(parts[0])
            if (handle is not None and handle.tools is None
                    and access.member_may_use(member.config, name)
                    and (len(name) == naming.MAX_NAME
                         or access.server_exposes(handle.server.tools, parts[1]))):
                return rpc.error(id_, rpc.UPSTREAM_UNAVAILABLE,
                                 f"server {handle.slug} is unavailable: {handle.why_down}")
        return rpc.error(id_, rpc.INVALID_PARAMS, f"Unknown tool: {name}")
