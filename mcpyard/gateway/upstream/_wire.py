"""What the gateway sends an upstream and makes of its answers: handshake-era requests without
the 2026-07-28 envelope, 2026-07-28 requests with it, the errors an answer carries, and text
that is safe to show (a URL without its query). No I/O here.

Versions, method names, codes and SSE framing are the protocol layer's (``mcpyard.mcp``).
"""

from __future__ import annotations

import base64
import os
from typing import cast

import orjson
from yarl import URL

import mcpyard
from mcpyard import errors
from mcpyard.gateway.upstream._base import Relay, UpstreamRPCError
from mcpyard.mcp import jsonrpc, protocol
from mcpyard.mcp.jsonrpc import JSONObject

_MODERN_BASE = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": protocol.MODERN_VERSION,
}
NOT_RELAYED = "the gateway has no client to relay this request to"

CLIENT_INFO: JSONObject = {"name": "mcpyard", "version": mcpyard.__version__}

_MAX_TEXT = 300


def request(rid: int, method: str, params: JSONObject | None) -> bytes:
    """A handshake-era request. A 2026-07-28 client's envelope in ``_meta`` is left out: a
    handshake-era server refuses a request that carries it (the SDK's servers do, with -32600),
    and the version and capabilities it names are the gateway's hop, not the client's."""
    if params is not None:
        params = without_envelope(params)
    return jsonrpc.encode(jsonrpc.request(rid, method, params))


def without_envelope(params: JSONObject) -> JSONObject:
    """``params`` without the 2026-07-28 envelope keys in ``_meta`` (the same object when it
    has none, so the common case copies nothing)."""
    meta = params.get("_meta")
    if type(meta) is not dict or not protocol.ENVELOPE_KEYS.intersection(meta):
        return params
    kept = {k: v for k, v in meta.items() if k not in protocol.ENVELOPE_KEYS}
    out = {k: v for k, v in params.items() if k != "_meta"}
    if kept:
        out["_meta"] = kept
    return out


def notification(method: str, params: JSONObject | None = None) -> bytes:
    return jsonrpc.encode(jsonrpc.notification(method, params))


RELAYED_CAPABILITIES: JSONObject = {"sampling": {}, "elicitation": {"form": {}, "url": {}},
                                        "roots": {}}
"""What the gateway can pass on to a client (the client itself may still refuse)."""


def initialize_params(version: str, capabilities: JSONObject | None = None
                      ) -> JSONObject:
    """``capabilities``: what the client behind this upstream session can answer (None: the
    gateway's own session, which answers nothing)."""
    return {"protocolVersion": version, "capabilities": capabilities or {},
            "clientInfo": CLIENT_INFO}


INITIALIZED = notification(protocol.INITIALIZED)


def cancelled(rid: int, reason: str) -> bytes:
    return jsonrpc.encode(jsonrpc.cancelled(rid, reason))


def modern_request(
    rid: int, method: str, params: JSONObject | None, relay: Relay | None
) -> tuple[bytes, dict[str, str]]:
    """A 2026-07-28 request: body (with the ``_meta`` envelope) and its routing headers.

    The client's capabilities, log level and ``Mcp-Param-*`` headers come from the request's
    relay when it has them (the downstream client's own); otherwise the gateway asks as a
    client that can answer nothing.
    """
    params = dict(params) if params else {}
    meta = params.get("_meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta[protocol.VERSION_KEY] = protocol.MODERN_VERSION
    meta[protocol.CAPABILITIES_KEY] = getattr(relay, "capabilities", None) or {}
    meta.setdefault(protocol.CLIENT_INFO_KEY, CLIENT_INFO)
    level = getattr(relay, "log_level_name", None)
    if level is not None:
        meta[protocol.LOG_LEVEL_KEY] = level
    params["_meta"] = meta
    headers = {**_MODERN_BASE, "Mcp-Method": method}
    field = protocol.TARGET_FIELD.get(method)
    name = params.get(field) if field is not None else None
    if isinstance(name, str):
        headers["Mcp-Name"] = header_value(name)
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


def answer(message: JSONObject) -> bytes:
    """The gateway's answer to a request the upstream sent it (server-to-client) when no
    client can take it (the clients relay one that a member's call in progress caused).

    ``ping`` gets its empty result; everything else (sampling, roots, elicitation) gets
    "method not found" so the upstream never waits for an answer that will not come.
    """
    rid = cast(jsonrpc.Id, message.get("id"))  # the upstream's own id, echoed unchecked
    if message.get("method") == protocol.PING:
        return jsonrpc.encode(jsonrpc.result(rid, {}))
    return jsonrpc.encode(jsonrpc.error(rid, jsonrpc.METHOD_NOT_FOUND, NOT_RELAYED))


def result_of(message: object, slug: str) -> JSONObject:
    """The ``result`` of a JSON-RPC response; its ``error`` raised as UpstreamRPCError."""
    if type(message) is dict:
        result = message.get("result")
        if type(result) is dict:
            return result
        error = message.get("error")
        if error is not None:
            raise rpc_error(error)
    raise errors.UpstreamError(f"{slug}: the upstream sent a malformed JSON-RPC response")


def rpc_error(error: object) -> UpstreamRPCError:
    if not isinstance(error, dict):
        return UpstreamRPCError(jsonrpc.INTERNAL_ERROR, "malformed error from the upstream")
    code = error.get("code")
    message = error.get("message")
    return UpstreamRPCError(
        code if type(code) is int else jsonrpc.INTERNAL_ERROR,
        message if isinstance(message, str) else "error without a message",
        error.get("data"),
    )


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
