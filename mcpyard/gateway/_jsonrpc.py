"""JSON-RPC 2.0 for the gateway: error codes, message builders, and the one error mapping.

Messages are plain dicts (parsed with orjson); builders return dicts, the transports encode
them. :func:`error_from` is the single place that maps mcpyard errors to JSON-RPC errors.
"""

from __future__ import annotations

import errno
from typing import Any

from mcpyard import errors

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
UPSTREAM_UNAVAILABLE = -32000
"""Implementation-defined server error: the upstream server failed or is not serving."""
REQUEST_TIMEOUT = -32001
"""The upstream did not answer in time (the code the MCP SDKs use for timeouts)."""
REQUEST_CANCELLED = -32800
"""The client cancelled the request (the code the MCP SDKs use); it ignores the answer."""
RATE_LIMITED = -32029
"""Implementation-defined server error: a rate limit refused the request. Sent with HTTP 429
and ``Retry-After`` (on /sse, where the POST was already accepted, on the stream only); the
message names the limit, ``data`` is ``{"retryAfter": seconds, "scope": "workspace" |
"member", "limit": requests per minute}``. The 29 echoes HTTP 429."""

Id = str | int | None


def result(id_: Id, value: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "result": value}


def error(id_: Id, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": err}


def rate_limited(id_: Id, refusal: errors.RateLimited) -> dict[str, Any]:
    return error(id_, RATE_LIMITED, refusal.message, {
        "retryAfter": refusal.retry_after, "scope": refusal.scope, "limit": refusal.limit})


def retry_after(reply: Any) -> int | None:
    """The seconds of a rate-limit refusal's ``Retry-After``, or None for any other reply."""
    err = reply.get("error") if isinstance(reply, dict) else None
    if isinstance(err, dict) and err.get("code") == RATE_LIMITED:
        data = err.get("data")
        if isinstance(data, dict) and isinstance(data.get("retryAfter"), int):
            return int(data["retryAfter"])
    return None


def notification(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        msg["params"] = params
    return msg


def is_response(msg: Any) -> bool:
    return (isinstance(msg, dict) and "method" not in msg and "id" in msg
            and ("result" in msg or "error" in msg))


def valid_id(value: Any) -> bool:
    # JSON-RPC allows strings and numbers; MCP forbids null ids for requests.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def error_from(id_: Id, exc: errors.MCPyardError | OSError | TimeoutError, *,
               slug: str) -> dict[str, Any]:
    """The JSON-RPC error for a failure on the upstream hop of server ``slug``: the one place
    the gateway maps errors (by class, never by message) to JSON-RPC.

    An upstream's own JSON-RPC error passes through as is; a timeout is
    :data:`REQUEST_TIMEOUT`; anything else :data:`UPSTREAM_UNAVAILABLE`, naming the server
    (upstream messages are already free of secrets and URL queries).
    """
    if isinstance(exc, errors.UpstreamRPCError):
        return error(id_, exc.code, exc.rpc_message, exc.data)
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, errors.UpstreamTimeout | TimeoutError) or (
            isinstance(exc, OSError) and exc.errno == errno.ETIMEDOUT):
        return error(id_, REQUEST_TIMEOUT, f"server {slug}: {text}")
    return error(id_, UPSTREAM_UNAVAILABLE, f"server {slug} is unavailable: {text}")
