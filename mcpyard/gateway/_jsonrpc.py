"""The gateway's own JSON-RPC: its rate-limit error and the one mapping of mcpyard errors.

Codes and message builders are the protocol layer's (``mcpyard.mcp.jsonrpc``);
:func:`error_from` is the single place that maps mcpyard errors to JSON-RPC errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mcpyard import errors
from mcpyard.mcp import jsonrpc

if TYPE_CHECKING:
    from mcpyard.gateway._limits import Refusal

RATE_LIMITED = -32029
"""Implementation-defined server error: a rate limit refused the request. Sent with HTTP 429
and ``Retry-After`` (on /sse, where the POST was already accepted, on the stream only); the
message names the limit, ``data`` is ``{"retryAfter": seconds, "scope": "workspace" |
"member", "limit": requests per minute}``. The 29 echoes HTTP 429."""


def rate_limited(id_: jsonrpc.Id, refusal: Refusal) -> dict[str, Any]:
    return jsonrpc.error(id_, RATE_LIMITED, refusal.message, {
        "retryAfter": refusal.retry_after, "scope": refusal.scope, "limit": refusal.limit})


def retry_after(reply: Any) -> int | None:
    """The seconds of a rate-limit refusal's ``Retry-After``, or None for any other reply."""
    err = reply.get("error") if isinstance(reply, dict) else None
    if isinstance(err, dict) and err.get("code") == RATE_LIMITED:
        data = err.get("data")
        if isinstance(data, dict) and isinstance(data.get("retryAfter"), int):
            return int(data["retryAfter"])
    return None


def error_from(id_: jsonrpc.Id, exc: errors.MCPyardError, *, slug: str) -> dict[str, Any]:
    """The JSON-RPC error for a failure on the upstream hop of server ``slug``.

    An upstream's own JSON-RPC error passes through as is; anything else becomes a gateway
    error naming the server (upstream messages are already free of secrets and URL queries).
    """
    from mcpyard.gateway.upstream._base import UpstreamRPCError

    if isinstance(exc, UpstreamRPCError):
        return jsonrpc.error(id_, exc.code, exc.rpc_message, exc.data)
    if isinstance(exc, TimeoutError):
        return jsonrpc.error(id_, jsonrpc.REQUEST_TIMEOUT, f"server {slug} did not answer in time")
    text = str(exc) or exc.__class__.__name__
    if "timed out" in text or "timeout" in text.lower():
        return jsonrpc.error(id_, jsonrpc.REQUEST_TIMEOUT, f"server {slug}: {text}")
    return jsonrpc.error(id_, jsonrpc.UPSTREAM_UNAVAILABLE,
                         f"server {slug} is unavailable: {text}")
