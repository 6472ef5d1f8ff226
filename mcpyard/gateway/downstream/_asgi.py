"""Raw ASGI helpers the transports share: read a body, answer, stream server-sent events.

The MCP endpoints are plain ASGI callables rather than Starlette Request/Response objects:
they are the hot path, and building those objects costs more than the work they wrap.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.types import Receive, Send

from mcpyard import errors
from mcpyard.gateway import _jsonrpc as rpc

MAX_BODY = 4 * 1024 * 1024
KEEPALIVE_SECONDS = 15.0

JSON = (b"content-type", b"application/json")
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
               (b"x-accel-buffering", b"no")]


def too_deep(body: bytes, payload: Any, limit: int) -> bool:
    """Whether ``payload`` (parsed from ``body``) nests arrays and objects deeper than
    ``limit``. A body with fewer brackets than the limit cannot: the common case costs two
    byte counts."""
    if body.count(b"{") + body.count(b"[") <= limit:
        return False
    stack = [(payload, 1)]
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
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client disconnected")
        chunk = message.get("body", b"")
        if chunk:
            body += chunk
            if len(body) > MAX_BODY:
                raise errors.BodyTooLarge
        if not message.get("more_body", False):
            return body


async def respond(send: Send, status: int, body: bytes = b"",
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    out = [(b"content-length", str(len(body)).encode())]
    if headers:
        out.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, status: int, message: Any,
                       headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await respond(send, status, orjson.dumps(message), [JSON, *(headers or ())])


async def respond_error(send: Send, status: int, code: int, text: str,
                        headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """An HTTP error with a JSON-RPC error body (id null), as MCP clients expect."""
    await respond_json(send, status, rpc.error(None, code, text), headers)


async def unauthorized(send: Send, challenge: bytes) -> None:
    await respond_json(send, 401, {"error": "invalid_token" if b"error=" in challenge
                                   else "unauthorized"},
                       [(b"www-authenticate", challenge)])


def accepts(accept: bytes | None, media: bytes) -> bool:
    """Whether an Accept header admits ``media`` (an absent header admits anything)."""
    if accept is None:
        return True
    major = media.split(b"/", 1)[0] + b"/*"
    for part in accept.split(b","):
        kind = part.split(b";", 1)[0].strip().lower()
        if kind in (media, major, b"*/*"):
            return True
    return False


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def event(data: bytes, name: bytes = b"message") -> bytes:
    # Encoded JSON holds no CR or LF, but it may hold U+2028, U+2029 and U+0085 raw, which
    # line readers built on str.splitlines() take for line ends: escaped, the JSON is the
    # same and every client reads one event.
    if b"\xe2\x80\xa8" in data or b"\xe2\x80\xa9" in data or b"\xc2\x85" in data:
        data = data.replace(b"\xe2\x80\xa8", b"\\u2028").replace(
            b"\xe2\x80\xa9", b"\\u2029").replace(b"\xc2\x85", b"\\u0085")
    return b"event: " + name + b"\ndata: " + data + b"\n\n"


async def stream(receive: Receive, send: Send, first: bytes | None,
                 next_message: Callable[[], Awaitable[bytes | None]]) -> None:
    """Serve a text/event-stream until the client leaves or ``next_message`` returns None."""
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
    await send({"type": "http.response.body", "body": first or b": open\n\n",
                "more_body": True})
    disconnect = asyncio.ensure_future(_disconnected(receive))
    try:
        while True:
            getter = asyncio.ensure_future(next_message())
            done, _ = await asyncio.wait({getter, disconnect}, timeout=KEEPALIVE_SECONDS,
                                         return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                if disconnect in done:
                    return
                await send({"type": "http.response.body", "body": b": keepalive\n\n",
                            "more_body": True})
                continue
            data = getter.result()
            if data is None:
                break
            await send({"type": "http.response.body", "body": event(data), "more_body": True})
        with contextlib.suppress(OSError):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        disconnect.cancel()
