"""Server-sent events (``text/event-stream``) as MCP uses them: parse, emit, serve a stream.

The parser is what the upstream clients read with; ``event``, ``Response`` (a POST's answer)
and ``serve`` (a GET stream) what the gateway's and the bridge's endpoints write with.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable
from typing import Final

import orjson

from mcpyard.mcp import asgi
from mcpyard.mcp.jsonrpc import JSONObject

HEADERS: Final = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
                  (b"x-accel-buffering", b"no")]
KEEPALIVE_SECONDS: Final = 15.0


class Parser:
    """Incremental ``text/event-stream`` parser (lines end with LF or CRLF).

    ``feed`` takes the bytes as they arrive and returns the events they complete, as
    ``(event type, data)``. A partial line waits in a bytearray, scanned once, so a message of
    many megabytes arriving in small chunks costs linear time. ``last_id`` and ``retry_ms``
    keep the stream's ``id`` and ``retry`` fields for a caller that resumes a stream.
    """

    __slots__ = ("_buf", "_data", "_event", "_scanned", "last_id", "retry_ms")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scanned = 0
        self._data: list[bytes] = []
        self._event = b""
        self.last_id: str | None = None
        self.retry_ms: int | None = None

    def feed(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        buf = self._buf
        buf += chunk
        events: list[tuple[bytes, bytes]] = []
        start = 0
        while True:
            end = buf.find(b"\n", self._scanned)
            if end < 0:
                self._scanned = len(buf)
                break
            line = bytes(buf[start:end])
            start = self._scanned = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data:
                    events.append((self._event or b"message", b"\n".join(self._data)))
                self._data = []
                self._event = b""
            elif line[0] != 0x3A:  # a line starting with ":" is a comment (keep-alive)
                name, _, value = line.partition(b":")
                if value[:1] == b" ":
                    value = value[1:]
                if name == b"data":
                    self._data.append(value)
                elif name == b"event":
                    self._event = value
                elif name == b"id" and b"\0" not in value:
                    self.last_id = value.decode("utf-8", "replace")
                elif name == b"retry" and value.isdigit():
                    self.retry_ms = int(value)
        if start:
            del buf[:start]
            self._scanned -= start
        return events


async def messages(chunks: AsyncIterable[bytes]) -> AsyncGenerator[JSONObject, None]:
    """The JSON-RPC messages (objects) of a ``text/event-stream``'s ``message`` events, as the
    chunks arrive; events that are not a JSON object are skipped."""
    parser = Parser()
    async for chunk in chunks:
        for event_type, data in parser.feed(chunk):
            if event_type != b"message":
                continue
            try:
                message = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if type(message) is dict:
                yield message


def event(data: bytes, name: bytes = b"message") -> bytes:
    """One event carrying ``data`` (encoded JSON)."""
    # Encoded JSON holds no CR or LF, but it may hold U+2028, U+2029 and U+0085 raw, which
    # line readers built on str.splitlines() take for line ends: escaped, the JSON is the
    # same and every client reads one event.
    if b"\xe2\x80\xa8" in data or b"\xe2\x80\xa9" in data or b"\xc2\x85" in data:
        data = data.replace(b"\xe2\x80\xa8", b"\\u2028").replace(
            b"\xe2\x80\xa9", b"\\u2029").replace(b"\xc2\x85", b"\\u0085")
    return b"event: " + name + b"\ndata: " + data + b"\n\n"


class Response:
    """A streamable HTTP POST's response: JSON when the answer comes first; an event stream
    from the first message that must reach the client before it (progress, a log message, a
    server-to-client request), ending with the answer as its last event."""

    __slots__ = ("headers", "send", "streaming")

    def __init__(self, send: asgi.Send, headers: list[tuple[bytes, bytes]] | None = None
                 ) -> None:
        self.send = send
        self.headers = headers
        """Extra headers of the HTTP response."""
        self.streaming = False

    async def event(self, data: bytes) -> None:
        """Send ``data`` (encoded JSON) before the answer: the response becomes a stream."""
        if not self.streaming:
            self.streaming = True
            await self.send({"type": "http.response.start", "status": 200,
                             "headers": [*HEADERS, *(self.headers or ())]})
        await self.send({"type": "http.response.body", "body": event(data), "more_body": True})

    async def finish(self, data: bytes, status: int = 200) -> None:
        """Send the answer (encoded JSON): the stream's last event, or the JSON response."""
        if not self.streaming:
            await asgi.respond(self.send, status, data, [asgi.JSON, *(self.headers or ())])
            return
        await self.send({"type": "http.response.body", "body": event(data), "more_body": False})


async def serve(receive: asgi.Receive, send: asgi.Send, first: bytes | None,
                next_message: Callable[[], Awaitable[bytes | None]], *,
                keepalive: float = KEEPALIVE_SECONDS) -> None:
    """Serve a text/event-stream until the client leaves or ``next_message`` returns None.

    ``first`` opens the stream (an event or a comment); a comment every ``keepalive``
    seconds keeps idle proxies from closing it.
    """
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": first or b": open\n\n",
                "more_body": True})
    disconnect = asyncio.ensure_future(asgi.disconnected(receive))
    try:
        while True:
            getter = asyncio.ensure_future(next_message())
            done, _ = await asyncio.wait({getter, disconnect}, timeout=keepalive,
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
