"""HTTP pieces only the gateway's transports use: its body and depth limits, its 401.

Reading bodies, answering, Accept and server-sent events are the protocol layer's
(``mcpyard.mcp.asgi`` and ``mcpyard.mcp.sse``), shared with the bridge.
"""

from __future__ import annotations

from starlette.types import Receive, Send

from mcpyard.mcp import asgi
from mcpyard.mcp.jsonrpc import JSONValue

MAX_BODY = 4 * 1024 * 1024


def too_deep(body: bytes, payload: JSONValue, limit: int) -> bool:
    """Whether ``payload`` (parsed from ``body``) nests arrays and objects deeper than
    ``limit``. A body with fewer brackets than the limit cannot: the common case costs two
    byte counts."""
    if body.count(b"{") + body.count(b"[") <= limit:
        return False
    stack: list[tuple[JSONValue, int]] = [(payload, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values() if isinstance(v, dict | list))
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value if isinstance(v, dict | list))
    return False


def depth_error(limit: int) -> str:
    return (f"Invalid Request: JSON nested deeper than {limit} levels (the gateway's limit, "
            "--max-json-depth)")


async def read_body(receive: Receive) -> bytes:
    """The request body, within the gateway's limit (:class:`errors.BodyTooLarge` beyond
    it)."""
    return await asgi.read_body(receive, MAX_BODY)


async def unauthorized(send: Send, challenge: bytes) -> None:
    await asgi.respond_json(send, 401, {"error": "invalid_token" if b"error=" in challenge
                                        else "unauthorized"},
                            [(b"www-authenticate", challenge)])
