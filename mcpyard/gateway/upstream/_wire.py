"""What goes over the wire to an upstream: JSON-RPC messages, text/event-stream parsing, and
text that is safe to show (a URL without its query). No I/O here.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncGenerator, AsyncIterable
from typing import Any

import orjson
from yarl import URL

import mcpyard
from mcpyard import errors
from mcpyard.gateway.upstream._base import UpstreamRPCError

HANDSHAKE_VERSION = "2025-11-25"
"""What the streamable HTTP and stdio clients ask for in ``initialize``."""
LEGACY_VERSION = "2024-11-05"
"""What the legacy HTTP+SSE client asks for: old servers expect it."""

METHOD_NOT_FOUND = -32601
HEADER_MISMATCH = -32020
UNSUPPORTED_VERSION = -32022

MODERN_VERSION = "2026-07-28"
"""The sessionless era; its requests carry the envelope below in ``params._meta``."""
VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo"
LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel"
_NAME_FIELD = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_MODERN_BASE = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": MODERN_VERSION,
}
NOT_RELAYED = "the gateway has no client to relay this request to"

CLIENT_INFO = {"name": "mcpyard", "version": mcpyard.__version__}

_MAX_TEXT = 300


ENVELOPE_KEYS = frozenset({VERSION_KEY, CAPABILITIES_KEY, CLIENT_INFO_KEY, LOG_LEVEL_KEY})
"""The 2026-07-28 envelope a modern client puts in ``params._meta``; never forwarded as is."""


def request(rid: int, method: str, params: dict[str, Any] | None) -> bytes:
    """A handshake-era request. A 2026-07-28 client's envelope in ``_meta`` is left out: a
    handshake-era server refuses a request that carries it (the SDK's servers do, with -32600),
    and the version and capabilities it names are the gateway's hop, not the client's."""
    if params is not None:
        params = without_envelope(params)
    if params is None:
        return orjson.dumps({"jsonrpc": "2.0", "id": rid, "method": method})
    return orjson.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})


def without_envelope(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` without the 2026-07-28 envelope keys in ``_meta`` (the same object when it
    has none, so the common case copies nothing)."""
    meta = params.get("_meta")
    if type(meta) is not dict or not ENVELOPE_KEYS.intersection(meta):
        return params
    kept = {k: v for k, v in meta.items() if k not in ENVELOPE_KEYS}
    out = {k: v for k, v in params.items() if k != "_meta"}
    if kept:
        out["_meta"] = kept
    return out


def notification(method: str, params: dict[str, Any] | None = None) -> bytes:
    if params is None:
        return orjson.dumps({"jsonrpc": "2.0", "method": method})
    return orjson.dumps({"jsonrpc": "2.0", "method": method, "params": params})


RELAYED_CAPABILITIES: dict[str, Any] = {"sampling": {}, "elicitation": {"form": {}, "url": {}},
                                        "roots": {}}
"""What the gateway can pass on to a client (the client itself may still refuse)."""


def initialize_params(version: str, capabilities: dict[str, Any] | None = None
                      ) -> dict[str, Any]:
    """``capabilities``: what the client behind this upstream session can answer (None: the
    gateway's own session, which answers nothing)."""
    return {"protocolVersion": version, "capabilities": capabilities or {},
            "clientInfo": CLIENT_INFO}


INITIALIZED = notification("notifications/initialized")


def cancelled(rid: int, reason: str) -> bytes:
    return notification("notifications/cancelled", {"requestId": rid, "reason": reason})


def modern_request(
    rid: int, method: str, params: dict[str, Any] | None, relay: Any
) -> tuple[bytes, dict[str, str]]:
    """A 2026-07-28 request: body (with the ``_meta`` envelope) and its routing headers.

    The client's capabilities, log level and ``Mcp-Param-*`` headers come from the request's
    relay when it has them (the downstream client's own); otherwise the gateway asks as a
    client that can answer nothing.
    """
    params = dict(params) if params else {}
    meta = params.get("_meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta[VERSION_KEY] = MODERN_VERSION
    meta[CAPABILITIES_KEY] = getattr(relay, "capabilities", None) or {}
    meta.setdefault(CLIENT_INFO_KEY, CLIENT_INFO)
    level = getattr(relay, "log_level_name", None)
    if level is not None:
        meta[LOG_LEVEL_KEY] = level
    params["_meta"] = meta
    headers = {**_MODERN_BASE, "Mcp-Method": method}
    field = _NAME_FIELD.get(method)
    if field is not None and isinstance(params.get(field), str):
        headers["Mcp-Name"] = header_value(params[field])
    extra = getattr(relay, "headers", None)
    if extra:
        headers.update(extra)
    body = orjson.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
    return body, headers


def header_value(value: str) -> str:
    """A value as an HTTP header carries it: verbatim when it can, else the spec's base64 form
    (the same encoding the official SDKs use)."""
    if value.isascii() and value.isprintable() and value == value.strip() and not (
        value.startswith("=?base64?") and value.endswith("?=")
    ):
        return value
    return "=?base64?" + base64.b64encode(value.encode()).decode("ascii") + "?="


def encode(message: dict[str, Any]) -> bytes:
    return orjson.dumps(message)


def answer(message: dict[str, Any]) -> bytes:
    """The gateway's answer to a request the upstream sent it (server-to-client) when no
    client can take it (the clients relay one that a member's call in progress caused).

    ``ping`` gets its empty result; everything else (sampling, roots, elicitation) gets
    "method not found" so the upstream never waits for an answer that will not come.
    """
    rid = message.get("id")
    if message.get("method") == "ping":
        return orjson.dumps({"jsonrpc": "2.0", "id": rid, "result": {}})
    error = {"code": METHOD_NOT_FOUND, "message": NOT_RELAYED}
    return orjson.dumps({"jsonrpc": "2.0", "id": rid, "error": error})


def result_of(message: Any, slug: str) -> dict[str, Any]:
    """The ``result`` of a JSON-RPC response; its ``error`` raised as UpstreamRPCError."""
    if type(message) is dict:
        result = message.get("result")
        if type(result) is dict:
            return result
        error = message.get("error")
        if error is not None:
            raise rpc_error(error)
    raise errors.UpstreamError(f"{slug}: the upstream sent a malformed JSON-RPC response")


def rpc_error(error: Any) -> UpstreamRPCError:
    if not isinstance(error, dict):
        return UpstreamRPCError(-32603, "malformed error from the upstream")
    code = error.get("code")
    message = error.get("message")
    return UpstreamRPCError(
        code if type(code) is int else -32603,
        message if isinstance(message, str) else "error without a message",
        error.get("data"),
    )


def is_response(message: dict[str, Any]) -> bool:
    return "method" not in message and ("result" in message or "error" in message)


def where(url: URL) -> str:
    """``host:port`` of a URL: what errors may name (never a query or credentials)."""
    host = url.host or "?"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{url.port}"


def os_reason(exc: OSError) -> str:
    """The system's words for a socket error ("Connection refused"), nothing from a URL."""
    if exc.errno:
        return os.strerror(exc.errno)
    return type(exc).__name__


def clip(text: str) -> str:
    """Bound text from an upstream before it goes into an error message or log line."""
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."


class SSEParser:
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


async def sse_messages(chunks: AsyncIterable[bytes]) -> AsyncGenerator[dict[str, Any], None]:
    """The JSON-RPC messages (objects) of a ``text/event-stream``'s ``message`` events, as the
    chunks arrive; events that are not a JSON object are skipped."""
    parser = SSEParser()
    async for chunk in chunks:
        for event, data in parser.feed(chunk):
            if event != b"message":
                continue
            try:
                message = orjson.loads(data)
            except orjson.JSONDecodeError:
                continue
            if type(message) is dict:
                yield message
