"""Raw ASGI helpers for MCP endpoints: read a body, answer, read headers, notice a disconnect.

The MCP endpoints of the gateway and the bridge are plain ASGI callables rather than Starlette
Request/Response objects: they are the hot path, and building those objects costs more than the
work they wrap.
"""

from __future__ import annotations

from typing import Final

import orjson
from starlette.types import Receive, Scope, Send

from mcpyard.errors import BodyTooLarge as BodyTooLarge
from mcpyard.mcp import jsonrpc

__all__ = [
    "JSON",
    "BodyTooLarge",
    "Receive",
    "Scope",
    "Send",
    "accepts",
    "disconnected",
    "header",
    "plain",
    "read_body",
    "respond",
    "respond_error",
    "respond_json",
]

JSON: Final = (b"content-type", b"application/json")
_PLAIN: Final = (b"content-type", b"text/plain; charset=utf-8")


async def read_body(receive: Receive, limit: int) -> bytes:
    """The request body; BodyTooLarge past ``limit`` bytes, ConnectionResetError when the
    client left before sending all of it."""
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client disconnected")
        chunk = message.get("body", b"")
        if chunk:
            body += chunk
            if len(body) > limit:
                raise BodyTooLarge
        if not message.get("more_body", False):
            return body


async def disconnected(receive: Receive) -> None:
    """Returns when the client has gone (run it as a task beside the response)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def respond(send: Send, status: int, body: bytes = b"",
                  headers: list[tuple[bytes, bytes]] | None = None) -> None:
    out = [(b"content-length", str(len(body)).encode())]
    if headers:
        out.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send: Send, status: int, message: jsonrpc.JSONLike,
                       headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await respond(send, status, orjson.dumps(message), [JSON, *(headers or ())])


async def respond_error(send: Send, status: int, code: int, text: str,
                        headers: list[tuple[bytes, bytes]] | None = None,
                        id_: jsonrpc.JSONValue = None) -> None:
    """An HTTP error with a JSON-RPC error body (id null unless known), as MCP clients expect."""
    await respond_json(send, status, jsonrpc.error(id_, code, text), headers)


async def plain(send: Send, status: int, text: str) -> None:
    await respond(send, status, text.encode(), [_PLAIN])


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), as text."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


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
