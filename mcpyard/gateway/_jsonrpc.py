"""The gateway's own JSON-RPC: its rate-limit error and the one mapping of mcpyard errors.

Codes and message builders are the protocol layer's (``mcpyard.mcp.jsonrpc``);
:func:`error_from` is the single place that maps mcpyard errors to JSON-RPC errors.
"""

from __future__ import annotations

import errno

from mcpyard import errors
from mcpyard.jsontypes import at
from mcpyard.mcp import jsonrpc

RATE_LIMITED = -32029
"""Implementation-defined server error: a rate limit refused the request. Sent with HTTP 429
and ``Retry-After`` (on /sse, where the POST was already accepted, on the stream only); the
message names the limit, ``data`` is ``{"retryAfter": seconds, "scope": "workspace" |
"member", "limit": requests per minute}``. The 29 echoes HTTP 429."""


def rate_limited(id_: jsonrpc.Id, refusal: errors.RateLimited) -> jsonrpc.Message:
    return jsonrpc.error(id_, RATE_LIMITED, refusal.message, {
        "retryAfter": refusal.retry_after, "scope": refusal.scope, "limit": refusal.limit})


def retry_after(reply: jsonrpc.Response) -> int | None:
    """The seconds of a rate-limit refusal's ``Retry-After``, or None for any other reply."""
    err = reply.get("error")
    if isinstance(err, dict) and err.get("code") == RATE_LIMITED:
        wait = at(err, "data", "retryAfter")
        if isinstance(wait, int):
            return int(wait)
    return None


def error_from(id_: jsonrpc.Id, exc: errors.MCPyardError | OSError | TimeoutError, *,
               slug: str) -> jsonrpc.Message:
    """The JSON-RPC error for a failure on the upstream hop of server ``slug``: the one place
    the gateway maps errors (by class, never by message) to JSON-RPC.

    An upstream's own JSON-RPC error passes through as is; a timeout is
    :data:`~mcpyard.mcp.jsonrpc.REQUEST_TIMEOUT`; anything else
    :data:`~mcpyard.mcp.jsonrpc.UPSTREAM_UNAVAILABLE`, naming the server (upstream messages are
    already free of secrets and URL queries).
    """
    if isinstance(exc, errors.UpstreamRPCError):
        return jsonrpc.error(id_, exc.code, exc.rpc_message, exc.data)
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, errors.UpstreamTimeout | TimeoutError) or (
            isinstance(exc, OSError) and exc.errno == errno.ETIMEDOUT):
        return jsonrpc.error(id_, jsonrpc.REQUEST_TIMEOUT, f"server {slug}: {text}")
    return jsonrpc.error(id_, jsonrpc.UPSTREAM_UNAVAILABLE,
                         f"server {slug} is unavailable: {text}")
